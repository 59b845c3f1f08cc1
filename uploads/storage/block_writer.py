"""A part's blocks on their way to its data file at as little CPU per byte as the machine allows:
the local backend hashes and writes every byte it receives, and on a small server that work,
not the disk, sets its pace.

A block that sits in page-aligned memory (body_blocks' blocks of a socket body) goes from there
to the disk with O_DIRECT: the kernel copies it neither into the page cache nor, later, out of
it. That copy was a third of the server's CPU for a large upload, and more where the page cache
grows into memory the machine has not touched yet (a virtual machine whose balloon hands free
memory back to its host faults on every such page: bench/local_upload.py)."""

import errno
import mmap
import os
from contextlib import suppress
from pathlib import Path

from portal.private_files import open_private
from uploads.storage.files import start_writeback, sync_data, write_at

# O_DIRECT wants memory, offsets and sizes aligned to the disk's logical block (512 or 4096
# bytes); the page size covers both.
DIRECT_ALIGNMENT = mmap.PAGESIZE


class BlockWriter:
    """Writes blocks at given offsets of one file (created if missing, mode 0600).

    A block in page-aligned memory whose offset and size are multiples of DIRECT_ALIGNMENT goes
    to the disk directly (O_DIRECT). Other blocks, and every block once the filesystem has
    refused O_DIRECT, go through the page cache with their writeback started at once. sync()
    makes all of them durable either way (fdatasync also commits the blocks' allocation and the
    file's size)."""

    def __init__(self, path: Path) -> None:
        self.fd = open_private(path, os.O_WRONLY | os.O_CREAT)
        self.direct_fd: int | None = None
        if hasattr(os, "O_DIRECT"):
            with suppress(OSError):  # a filesystem without O_DIRECT: through the page cache
                self.direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)

    def reserve(self, offset: int, length: int) -> None:
        """Allocates a range that direct writes will fill, before they do: direct writes into
        allocated blocks inside the file's size run side by side (ext4 and XFS take the inode's
        lock shared for them), while one that allocates holds it exclusively until the disk has
        its bytes. A full disk is an error here, before a byte of the part is written."""
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
        Fillable body do); a bytes object's memory never does."""
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
