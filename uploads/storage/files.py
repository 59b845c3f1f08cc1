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

CHUNK_SIZE = 1024 * 1024


class HashedTempFile:
    """A file being received into `directory` (which must exist: a part's directory vanishing
    mid-upload means its upload was completed or aborted, and must not be made again)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f".tmp-{secrets.token_hex(8)}"
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._out: IO[bytes] | None = open(self.path, "wb")  # noqa: SIM115 -- closed by finish() or discard()

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
    """Serialises the writers of one upload or one object, across threads and processes."""
    lock_path = path.parent / f"{path.name}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
