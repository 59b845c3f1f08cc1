"""The disk operations the local backend builds S3's guarantees from: a file received in chunks,
hashed as it arrives and fsynced before it counts (a 200 means durable bytes); atomic JSON
writes; one writer per path across threads and processes; copies inside the kernel."""

import errno
import fcntl
import hashlib
import json
import os
import secrets
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

    def write(self, chunk: bytes | memoryview) -> None:
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


def write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    """All of `data` at `offset` (a pwrite may write less than asked, on a signal or a full disk)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def copy_range(source: int, source_offset: int, target: int, target_offset: int, length: int) -> None:
    """Copies `length` bytes between two open files inside the kernel (copy_file_range) where
    the OS offers it: the bytes never pass through Python. Elsewhere (macOS, or a filesystem
    that refuses), positioned reads and writes in CHUNK_SIZE blocks. A source that ends early
    is an OSError: the caller was told the bytes were there."""
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < length:
                sent = os.copy_file_range(
                    source, target, length - copied, source_offset + copied, target_offset + copied
                )
                if sent == 0:
                    break
                copied += sent
        except OSError:
            pass  # not supported here: finish with the plain copy below
    while copied < length:
        block = os.pread(source, min(CHUNK_SIZE, length - copied), source_offset + copied)
        if not block:
            raise OSError(errno.EIO, f"The source ended {length - copied} bytes before the range did.")
        write_at(target, block, target_offset + copied)
        copied += len(block)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Has the kernel start writing bytes just written out now, while the rest of the file
    arrives, so the sync that must come before an answer finds little left to write (Linux
    starts writeback of a range's dirty pages on POSIX_FADV_DONTNEED; they stay cached)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def sync_data(fd: int) -> None:
    """The file's bytes and size on disk (fdatasync where the OS has it: its timestamps need not be)."""
    getattr(os, "fdatasync", os.fsync)(fd)


def sync_dir(path: Path) -> None:
    """Makes the names created, renamed or removed in a directory durable: a rename is only as
    durable as the directory that records it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """The file is replaced whole: its content is on disk before the rename that shows it, so a
    crash leaves the old file or the new one, never an empty one under the name."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w", encoding="utf-8") as out:
            out.write(json.dumps(data))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half-written copy beside the file
        raise
