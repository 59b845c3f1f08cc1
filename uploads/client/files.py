"""Reading a file the way the transfer needs it: a part at a time from its offset (never the
whole file), hashed while it is read, so the MD5 compared with storage's ETag is the MD5 of
the very bytes that went on the wire."""

import hashlib
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from uploads.client.errors import FILE_CHANGED, CatalogError

READ_BLOCK = 1024 * 1024

# The portal's accepted types by extension (its own list is in the OpenAPI schema); the
# standard library's guesses miss some (.m4a, .opus, .heic) and differ between systems.
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".webm": "audio/webm",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
}


def content_type_of(path: Path) -> str:
    """By extension; the portal refuses a type it does not take (415) before any byte is sent."""
    guessed = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class Fingerprint:
    """What tells a file apart from the one a saved upload was reading: its size and mtime.
    A file rewritten in place with the same size and mtime is caught later, by the ETags."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> "Fingerprint":
        stat = path.stat()
        return cls(size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def file_changed(path: Path) -> CatalogError:
    return CatalogError(
        f"{path} changed while it was being uploaded; run the command again to send the new file.",
        code=FILE_CHANGED,
        details={"path": str(path)},
    )


class PartReader:
    """A file-like view of bytes [offset, offset + length) of an open file, read with pread
    (so several threads share one descriptor), hashed as it goes. `on_bytes` hears of every
    block handed to the connection."""

    def __init__(
        self, fd: int, path: Path, offset: int, length: int, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        self._fd = fd
        self._path = path
        self._offset = offset
        self._length = length
        self._position = 0
        self._on_bytes = on_bytes
        self._md5 = hashlib.md5(usedforsecurity=False)

    def __len__(self) -> int:
        return self._length

    @property
    def sent(self) -> int:
        return self._position

    def read(self, size: int = -1, /) -> bytes:
        remaining = self._length - self._position
        want = remaining if size is None or size < 0 else min(size, remaining)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self._position)
        if len(data) != want:  # pread of a regular file is short only at its end: it shrank
            raise file_changed(self._path)
        self._position += want
        self._md5.update(data)
        if self._on_bytes is not None:
            self._on_bytes(want)
        return data

    def hexdigest(self) -> str:
        """The MD5 of what was read; complete once the whole part has been read."""
        if self._position != self._length:
            raise RuntimeError("the part was not read to its end")
        return self._md5.hexdigest()


def md5_of_range(fd: int, path: Path, offset: int, length: int) -> str:
    """For parts an earlier run sent: storage's ETag is checked against the file as it is now."""
    reader = PartReader(fd, path, offset, length)
    while reader.read(READ_BLOCK):
        pass
    return reader.hexdigest()


def bare_etag(etag: str | None) -> str:
    """S3 and the local backend quote ETags; compare them bare and lower-case."""
    return (etag or "").strip().strip('"').lower()


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a completed multipart object: MD5 of the parts' binary MD5s, '-', count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(m) for m in part_md5s), usedforsecurity=False).hexdigest()
    return f"{digest}-{len(part_md5s)}"
