"""A request body's bytes on their way to disk, block by block, at as little CPU per byte as the
machine allows: the local backend hashes and writes every byte it receives, and on a small
server that work, not the disk, sets its pace.

A body that can fill a buffer itself (portal.gunicorn_body.SocketBody) is received into one
page-aligned buffer per request, and each block goes from there to the hash and, with O_DIRECT,
to the disk: the kernel copies it once, from the socket. Any other body is read a block at a
time (a new bytes object each) and written through the page cache."""

import errno
import mmap
import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Protocol, runtime_checkable

from portal.private_files import open_private
from uploads.errors import InvalidInput, TooLarge
from uploads.storage.files import CHUNK_SIZE, start_writeback, sync_data, write_at

# O_DIRECT wants memory, offsets and sizes aligned to the disk's logical block (512 or 4096
# bytes); the page size covers both.
DIRECT_ALIGNMENT = mmap.PAGESIZE


class ReadsBytes(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@runtime_checkable
class Fillable(Protocol):
    """A body that puts its next bytes into the caller's buffer and says how many (0: it
    ended), so a block costs no new object and no copy (portal.gunicorn_body.SocketBody)."""

    def fill(self, buffer: memoryview, /) -> int: ...


Readable = ReadsBytes | Fillable  # a request body


def body_blocks(body: Readable, length: int) -> Iterator[bytes | memoryview]:
    """Exactly `length` bytes of a request body, CHUNK_SIZE at a time; a body that ends early or
    runs on is the client's error, noticed before anything counts as stored.

    A Fillable body's blocks are views of one page-aligned buffer (each starts at its start, so
    it may go to disk with O_DIRECT), filled again for the next block: use each block before
    asking for the next and keep no reference to it."""
    if isinstance(body, Fillable):
        yield from _filled_blocks(body, length)
        return
    remaining = length
    while remaining:
        chunk = body.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise _ended_early(remaining)
        remaining -= len(chunk)
        yield chunk
    if body.read(1):
        raise _too_long()


def _filled_blocks(body: Fillable, length: int) -> Iterator[memoryview]:
    buffer = memoryview(mmap.mmap(-1, max(1, min(CHUNK_SIZE, length))))  # anonymous: page-aligned
    remaining = length
    while remaining:
        block = buffer[: min(len(buffer), remaining)]
        filled = 0
        while filled < len(block):  # a whole block: fewer, larger hash updates and writes
            count = body.fill(block[filled:])
            if not count:
                raise _ended_early(remaining - filled)
            filled += count
        remaining -= filled
        yield block
    if body.fill(buffer[:1]):
        raise _too_long()


def _ended_early(missing: int) -> InvalidInput:
    return InvalidInput(
        "The request body ended before Content-Length bytes arrived.", details={"missingBytes": missing}
    )


def _too_long() -> TooLarge:
    return TooLarge("The request body is longer than its Content-Length.")


class BlockWriter:
    """Writes blocks at given offsets of one file (created if missing, mode 0600).

    A block in page-aligned memory whose offset and size are multiples of DIRECT_ALIGNMENT goes
    from that memory to the disk (O_DIRECT): the kernel neither copies it into the page cache
    nor writes it back later. Other blocks, and every block once the filesystem refused
    O_DIRECT, go through the page cache with their writeback started at once. sync() makes all
    of them durable either way (fdatasync also commits the blocks' allocation and the size)."""

    def __init__(self, path: Path) -> None:
        self.fd = open_private(path, os.O_WRONLY | os.O_CREAT)
        self.direct_fd: int | None = None
        if hasattr(os, "O_DIRECT"):
            with suppress(OSError):  # a filesystem without O_DIRECT: through the page cache
                self.direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)

    def reserve(self, offset: int, length: int) -> None:
        """Allocates a range that direct writes will fill, before they do: writes into allocated
        blocks inside the file's size run side by side (ext4 and XFS take the inode's lock shared
        for them), while one that allocates holds it exclusively until the disk has the bytes."""
        if self.direct_fd is None or length <= 0 or offset % DIRECT_ALIGNMENT:
            return
        try:
            os.posix_fallocate(self.fd, offset, length)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # EOPNOTSUPP and the like: the writes allocate as they go.

    def write(self, block: bytes | memoryview, offset: int, *, aligned_memory: bool) -> None:
        """`aligned_memory`: the block starts on a page boundary (body_blocks' blocks of a
        Fillable body do); bytes objects never do."""
        view = memoryview(block)
        if (
            self.direct_fd is not None
            and aligned_memory
            and not offset % DIRECT_ALIGNMENT
            and not len(view) % DIRECT_ALIGNMENT
        ):
            try:
                written = os.pwrite(self.direct_fd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: not here after all (alignment, filesystem)
                    raise
                self._stop_direct()
                written = 0
            view, offset = view[written:], offset + written  # a short write: the rest as below
        if view:
            write_at(self.fd, view, offset)
            start_writeback(self.fd, offset, len(view))

    def sync(self) -> None:
        sync_data(self.fd)

    def _stop_direct(self) -> None:
        if self.direct_fd is not None:
            os.close(self.direct_fd)
            self.direct_fd = None

    def close(self) -> None:
        self._stop_direct()
        os.close(self.fd)
