"""The disk operations the local backend builds S3's guarantees from: a file received in chunks,
hashed as it arrives and fsynced before it counts (a 200 means durable bytes); atomic JSON
writes; one writer per path across threads and processes; copies inside the kernel."""

import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from portal.private_files import open_private

CHUNK_SIZE = 1024 * 1024


class HashedTempFile:
    """A file being received into `directory` (which must exist: a part's directory vanishing
    mid-upload means its upload was completed or aborted, and must not be made again)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f".tmp-{secrets.token_hex(8)}"
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)  # 0600: stored bytes are private
        self._out: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        assert self._out is not None
        self._out.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Makes the bytes durable and closes the file; returns their MD5 (hex), S3's ETag."""
        assert self._out is not None
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
        finally:
            self._out.close()
            self._out = None
        return self._md5.hexdigest()

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self.path.unlink(missing_ok=True)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialises the writers of one upload or one object, across threads and processes, with
    flock on `<path>.lock`; the lock file is removed again when the holder leaves, so none stays
    behind per object or upload.

    Removing a lock file others may be waiting on is safe only because every taker re-checks,
    once it holds the lock, that the name still leads to the file it locked (same inode): a
    waiter woken on a removed file, or one that opened it just before its removal, lets go and
    starts again on the file now at that name. The holder removes the file as the last act of
    its critical section, before unlocking, so the next holder (of the new file) never overlaps
    with it. Removing only on complete/abort/delete would leave a lock per object forever."""
    lock_path = path.parent / f"{path.name}.lock"
    while True:
        fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(lock_path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed or replaced while we waited: take the lock at its name again
    try:
        yield
    finally:
        try:
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # releases the flock


def append(source: Path, out: IO[bytes]) -> int:
    """Copies a part into the assembling object inside the kernel (copy_file_range) where the
    OS offers it: the bytes never pass through Python. Elsewhere (macOS), a chunked copy."""
    out.flush()
    with open(source, "rb") as src:
        length = os.fstat(src.fileno()).st_size
        copied = 0
        if hasattr(os, "copy_file_range"):
            try:
                while copied < length:
                    sent = os.copy_file_range(src.fileno(), out.fileno(), length - copied)
                    if sent == 0:
                        break
                    copied += sent
            except OSError:
                pass  # not supported by this filesystem: finish with the plain copy below
        if copied < length:
            src.seek(copied)
            os.lseek(out.fileno(), 0, os.SEEK_END)
            shutil.copyfileobj(src, out, CHUNK_SIZE)
            out.flush()
    return length


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w", encoding="utf-8") as out:
            out.write(json.dumps(data))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written copy beside the file
        raise
