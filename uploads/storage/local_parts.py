"""How the local backend keeps a multipart upload's parts so that every byte reaches the disk
once: a part is written straight to where it will sit in the finished object, and completion
publishes that file instead of copying the parts into a new one.

multipart/<uploadId>/ holds:
  upload.json       key and content type; also the upload's gate (flock): writers hold it shared
                    while they touch the part files, complete and abort hold it exclusively
  data.<size>       the bytes of every part of that size, part n at (n - 1) * size. When all
                    parts but the last are of one size (every planned upload's are, and Uppy's),
                    this file already is the object: completion moves at most the last part
                    into it, then links it into objects/. Other part lists are copied into a new
                    file, inside the kernel
  NNNNN.<md5>       a part's record, renamed into place once its bytes are durable: an empty,
                    sparse file as long as the part, so a listing needs one stat per part
  .part-NNNNN.lock  one writer per part at a time (files.locked)

Uploads begun before this layout hold each part's bytes in its record and no data file; they
go on that way until they complete (see records_hold_bytes)."""

import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from portal.private_files import open_private
from uploads.storage.base import PartsRejected, StorageError, StoredPart, UploadNotFound
from uploads.storage.block_writer import BlockWriter
from uploads.storage.files import (
    HashedTempFile,
    copy_range,
    locked,
    sync_data,
    sync_dir,
)
from uploads.storage.request_body import Fillable, Readable, body_blocks

# A part whose slot would end past this offset gets a file of its own (ext4 files stop at
# 16 TiB; a client of an open upload may send part 10,000 at 5 GiB).
SLOT_SPAN_LIMIT = 1 << 40
DATA_PREFIX = "data."
MD5_HEX_LENGTH = 32


@dataclass(frozen=True)
class Slot:
    name: str
    offset: int


def slot_of(part_number: int, size: int) -> Slot:
    """Where a part's bytes go: a pure function of its number and size, so a writer needs no
    plan and completion finds them again from the part list alone."""
    offset = (part_number - 1) * size
    if offset + size <= SLOT_SPAN_LIMIT:
        return Slot(f"{DATA_PREFIX}{size}", offset)
    return Slot(f"{DATA_PREFIX}{size}.{part_number}", 0)


def record_name(part_number: int, md5_hex: str) -> str:
    return f"{part_number:05d}.{md5_hex}"


def parse_record(name: str) -> tuple[int, str] | None:
    number, dot, md5 = name.partition(".")
    if not dot or not number.isdigit() or len(md5) != MD5_HEX_LENGTH:
        return None
    return int(number), md5


class UploadGate:
    """flock on the upload's upload.json. Writers hold it shared only while they change part
    files (a block written, a record published or removed), never while they wait on the
    network, so complete and abort, which hold it exclusively, wait for one block at most and
    then see no write until they are done. Whoever gets the gate checks that upload.json still
    has a name: once complete or abort removed the upload, nothing writes there again (an
    open data file may have become the object)."""

    def __init__(self, directory: Path) -> None:
        self.upload_id = directory.name
        try:
            self.fd = os.open(directory / "upload.json", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise UploadNotFound(self.upload_id) from None

    @contextmanager
    def _held(self, operation: int) -> Iterator[None]:
        fcntl.flock(self.fd, operation)
        try:
            if os.fstat(self.fd).st_nlink == 0:
                raise UploadNotFound(self.upload_id)
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def shared(self) -> AbstractContextManager[None]:
        return self._held(fcntl.LOCK_SH)

    def exclusive(self) -> AbstractContextManager[None]:
        return self._held(fcntl.LOCK_EX)

    def __enter__(self) -> "UploadGate":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        os.close(self.fd)


@dataclass
class _Listing:
    records: list[str]  # every part record's name
    data_files: list[str]
    writers: list[str]  # part lock files: writers at work or waiting


def _list(directory: Path) -> _Listing:
    listing = _Listing([], [], [])
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(DATA_PREFIX):
                listing.data_files.append(name)
            elif name.startswith(".part-"):
                listing.writers.append(name)
            elif parse_record(name) is not None:
                listing.records.append(name)
    return listing


def records_hold_bytes(listing: _Listing) -> bool:
    """An upload begun before data files: it has parts and no data file (a record of this
    layout exists only while its data file does)."""
    return bool(listing.records) and not listing.data_files


# --- receiving a part ---------------------------------------------------------------------------
def receive_part(directory: Path, *, part_number: int, body: Readable, length: int) -> str:
    """Stores one part; returns its MD5 (hex), S3's ETag. When this returns, the bytes and their
    record are durable. A part sent again (or twice at once) is written by one writer at a
    time, and its earlier record is removed before its bytes change: a reader finds either a
    record that matches the bytes or none. A PUT that fails leaves the part missing."""
    with UploadGate(directory) as gate:
        try:
            with locked(directory / f".part-{part_number:05d}"):
                return _receive(gate, directory, part_number, body, length)
        except FileNotFoundError:  # the directory went: completed or aborted meanwhile
            raise UploadNotFound(directory.name) from None


def _receive(gate: UploadGate, directory: Path, part_number: int, body: Readable, length: int) -> str:
    slot = slot_of(part_number, length)
    with gate.shared():
        listing = _list(directory)
        older_layout = records_hold_bytes(listing)
        if not older_layout:
            earlier = [name for name in listing.records if name.startswith(f"{part_number:05d}.")]
            for name in earlier:
                (directory / name).unlink(missing_ok=True)
            if earlier:
                sync_dir(directory)  # missing for good before its bytes change, even after a crash
            out = BlockWriter(directory / slot.name)
    if older_layout:
        return _receive_into_record(gate, directory, part_number, body, length)
    try:
        aligned_memory = isinstance(body, Fillable)  # see body_blocks
        if aligned_memory:
            with gate.shared():
                out.reserve(slot.offset, length)
        md5 = hashlib.md5(usedforsecurity=False)
        position = slot.offset
        for chunk in body_blocks(body, length):
            md5.update(chunk)  # releases the GIL on blocks this large
            with gate.shared():
                out.write(chunk, position, aligned_memory=aligned_memory)
            position += len(chunk)
        digest = md5.hexdigest()
        record = _RecordAside(directory, length)
        try:
            out.sync()  # on ext4 and XFS this commit carries the record's creation too
            with gate.shared():
                record.publish(record_name(part_number, digest))
        finally:
            record.discard()
        return digest
    except BaseException:
        _forget_slot(gate, directory, slot, length, part_number)
        raise
    finally:
        out.close()


class _RecordAside:
    """A part's record, made under a temporary name before the part's bytes are synced (so the
    sync that makes them durable commits its creation too, one journal commit fewer per part),
    and renamed into place once they are: the record never shows before its bytes are on disk."""

    def __init__(self, directory: Path, size: int) -> None:
        self.directory = directory
        self.path = directory / f".tmp-{secrets.token_hex(8)}"
        self.fd: int | None = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.ftruncate(self.fd, size)  # a hole: no block is written

    def publish(self, name: str) -> None:
        assert self.fd is not None
        os.fsync(self.fd)
        os.replace(self.path, self.directory / name)
        sync_dir(self.directory)

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.path.unlink(missing_ok=True)  # published: gone already


def _forget_slot(gate: UploadGate, directory: Path, slot: Slot, size: int, part_number: int) -> None:
    """After a failed PUT, its slot file goes too unless something may still need it: a record
    of a part of that size, or another writer at work. Anything left goes with the upload."""
    ours = f".part-{part_number:05d}.lock"
    try:
        with gate.exclusive():
            listing = _list(directory)
            if any(name != ours for name in listing.writers):
                return
            if any((directory / name).stat().st_size == size for name in listing.records):
                return
            (directory / slot.name).unlink(missing_ok=True)
    except (UploadNotFound, OSError):
        pass  # completed or aborted meanwhile, or the disk refuses: completion or abort removes it


def _receive_into_record(gate: UploadGate, directory: Path, part_number: int, body: Readable, length: int) -> str:
    """The layout of uploads begun before data files: the part's bytes in its record, renamed
    into place under the gate like any record."""
    incoming = HashedTempFile(directory)
    try:
        for chunk in body_blocks(body, length):
            incoming.write(chunk)
        md5 = incoming.finish()
        final = directory / record_name(part_number, md5)
        with gate.shared():
            os.replace(incoming.path, final)
            for other in directory.glob(f"{part_number:05d}.*"):
                if other != final:
                    other.unlink(missing_ok=True)
            sync_dir(directory)
    except BaseException:
        incoming.discard()
        raise
    return md5


# --- completing -----------------------------------------------------------------------------------
def assemble(directory: Path, parts: Sequence[StoredPart], target: Path) -> int:
    """Gives the object made of `parts` the name `target` (in the storage's tmp dir, on the same
    filesystem); returns its size. Called with the gate held exclusively, so no part changes
    meanwhile. Raises PartsRejected for a part whose record is not there as listed.

    When every part but the last sits at its place in one data file, that file is the object:
    the last part is moved into it if it is elsewhere, the file is cut to the object's size and
    linked to `target`. A link, not a rename: until the upload directory is removed the data
    file keeps its name, so a completion cut short by a crash can simply run again."""
    listing = _list(directory)
    for part in parts:
        try:
            stored_size = (directory / record_name(part.part_number, part.etag.strip('"'))).stat().st_size
        except FileNotFoundError:
            stored_size = None
        if stored_size != part.size:  # re-sent or removed since it was listed
            raise PartsRejected(f"InvalidPart: part {part.part_number} with ETag {part.etag}")
    if records_hold_bytes(listing):  # each part's bytes are its record, checked above
        sources = [(record_name(p.part_number, p.etag.strip('"')), 0) for p in parts]
        return _copy_into_new_file(directory, parts, sources, target)
    slots = [slot_of(p.part_number, p.size) for p in parts]
    offsets = [sum(p.size for p in parts[:i]) for i in range(len(parts))]
    base = slots[0].name
    if all(s.name == base and s.offset == o for s, o in zip(slots[:-1], offsets[:-1], strict=True)):
        return _complete_in_place(directory, parts, slots, offsets, target)
    return _copy_into_new_file(directory, parts, [(s.name, s.offset) for s in slots], target)


def _complete_in_place(
    directory: Path, parts: Sequence[StoredPart], slots: list[Slot], offsets: list[int], target: Path
) -> int:
    size = offsets[-1] + parts[-1].size
    base = directory / slots[0].name
    last_in_place = slots[-1] == Slot(slots[0].name, offsets[-1])
    fd = open_private(base, os.O_RDWR | os.O_CREAT)
    try:
        if os.fstat(fd).st_size < (size if last_in_place else offsets[-1]):
            # A record without its bytes: receive_part never makes one. Never pad an object with zeros.
            raise StorageError(f"The data file of upload {directory.name} is shorter than its parts.")
        if not last_in_place:
            _copy_part(directory, slots[-1], fd, offsets[-1], parts[-1])
        os.ftruncate(fd, size)  # parts sent but not listed go, as S3 discards them
        sync_data(fd)
    finally:
        os.close(fd)
    os.link(base, target)
    return size


def _copy_part(directory: Path, slot: Slot, target_fd: int, target_offset: int, part: StoredPart) -> None:
    try:
        source = os.open(directory / slot.name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StorageError(f"The bytes of part {part.part_number} of upload {directory.name} are missing.") from None
    try:
        copy_range(source, slot.offset, target_fd, target_offset, part.size)
    finally:
        os.close(source)


def _copy_into_new_file(
    directory: Path, parts: Sequence[StoredPart], sources: list[tuple[str, int]], target: Path
) -> int:
    """Part lists of mixed sizes (a client choosing its own), and uploads of the older layout."""
    fd = open_private(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    size = 0
    try:
        for part, (name, offset) in zip(parts, sources, strict=True):
            _copy_part(directory, Slot(name, offset), fd, size, part)
            size += part.size
        sync_data(fd)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return size


def multipart_etag(parts: Sequence[StoredPart]) -> str:
    """S3's: the MD5 of the parts' MD5 digests, a dash, the part count."""
    digests = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digests.update(bytes.fromhex(part.etag.strip('"')))
    return f'"{digests.hexdigest()}-{len(parts)}"'
