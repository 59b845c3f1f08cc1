"""A request body of known length, read in blocks for the local backend to hash and write:
through `read()` from any WSGI server, or `fill`ed into one reused buffer where the server
allows it (portal.gunicorn_body). Either way exactly Content-Length bytes, or the client's
error before anything counts as stored."""

import mmap
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from uploads.errors import InvalidInput, TooLarge
from uploads.storage.files import CHUNK_SIZE


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
    it may go to disk with O_DIRECT: uploads.storage.block_writer), filled again for the next
    block: use each block before asking for the next and keep no reference to it."""
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
