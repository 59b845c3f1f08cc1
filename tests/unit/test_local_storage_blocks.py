"""A body that fills the storage's buffer itself (as gunicorn's socket does, portal.gunicorn_body)
is stored like any other: same bytes, same ETags, same refusals. Its whole aligned blocks go to
disk with O_DIRECT (no page-cache copy), the rest through the page cache, and a filesystem that
refuses O_DIRECT, or a block it will not take, is written through the page cache instead."""

import errno
import fcntl
import hashlib
import io
import mmap
import os
from pathlib import Path

import pytest

from uploads.errors import InvalidInput
from uploads.storage import LocalStorage
from uploads.storage.base import SignedRequest
from uploads.storage.block_writer import DIRECT_ALIGNMENT, BlockWriter
from uploads.storage.files import CHUNK_SIZE

pytestmark = pytest.mark.once  # files only, no database

KEY = "t/a/trk/med.ogg"
PART = 2 * CHUNK_SIZE + DIRECT_ALIGNMENT  # two whole blocks and an aligned third


class FilledBody:
    """Fills the caller's buffer a piece at a time, as a socket does."""

    def __init__(self, data: bytes, piece: int = 100_000) -> None:
        self.data, self.piece, self.position = data, piece, 0

    def fill(self, buffer: memoryview, /) -> int:
        count = min(len(buffer), self.piece, len(self.data) - self.position)
        buffer[:count] = self.data[self.position : self.position + count]
        self.position += count
        return count


class Writes:
    """Every pwrite tried: whether its file was opened with O_DIRECT, and how many bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[bool, int]] = []
        pwrite = os.pwrite

        def recording(fd: int, data: bytes | memoryview, offset: int) -> int:
            self.seen.append((bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT), len(memoryview(data))))
            return pwrite(fd, data, offset)

        monkeypatch.setattr(os, "pwrite", recording)

    def bytes_written(self, *, direct: bool) -> int:
        return sum(count for was_direct, count in self.seen if was_direct == direct)


def sign_part(storage: LocalStorage, upload_id: str, number: int, size: int) -> SignedRequest:
    return storage.presign_parts(key=KEY, upload_id=upload_id, parts=[(number, size)], expires_in=60)[0]


def takes_direct_writes(directory: Path) -> bool:
    try:
        os.close(os.open(directory / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
    except OSError:
        return False
    return True


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    """A directory on a filesystem that takes O_DIRECT (tmpfs before Linux 6.6 does not)."""
    if not takes_direct_writes(tmp_path):
        pytest.skip("the temporary directory's filesystem refuses O_DIRECT")
    return tmp_path


def etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def put_parts(storage: LocalStorage, parts: list[bytes]) -> str:
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    for number, data in enumerate(parts, start=1):
        signed = sign_part(storage, upload_id, number, len(data))
        token = signed.url.rsplit("/", 1)[-1]
        assert storage.receive_put(token=token, body=FilledBody(data), content_length=len(data)) == etag(data)
    return upload_id


def complete(storage: LocalStorage, upload_id: str) -> bytes:
    storage.complete_multipart(key=KEY, upload_id=upload_id, parts=storage.list_parts(key=KEY, upload_id=upload_id))
    return (storage.root / "objects" / KEY).read_bytes()


def test_filled_parts_go_to_disk_directly_and_become_the_object(
    direct_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = Writes(monkeypatch)
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1_000)]
    storage = LocalStorage(direct_dir)
    assert complete(storage, put_parts(storage, parts)) == b"".join(parts)
    assert writes.bytes_written(direct=True) == 2 * PART
    assert writes.bytes_written(direct=False) == 1_000  # the short last part: through the page cache


def test_block_not_a_multiple_of_the_alignment_goes_through_the_page_cache(
    direct_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = Writes(monkeypatch)
    part = os.urandom(CHUNK_SIZE + 100)  # one whole block, then 100 bytes
    storage = LocalStorage(direct_dir)
    assert complete(storage, put_parts(storage, [part])) == part
    assert writes.seen == [(True, CHUNK_SIZE), (False, 100)]


def test_part_whose_place_in_the_file_is_not_aligned_goes_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [os.urandom(2 * CHUNK_SIZE + 100), os.urandom(2 * CHUNK_SIZE + 100)]  # part 2 at 2 MiB + 100
    storage = LocalStorage(tmp_path)
    upload_id = put_parts(storage, parts[:1])
    writes = Writes(monkeypatch)
    signed = sign_part(storage, upload_id, 2, len(parts[1]))
    token = signed.url.rsplit("/", 1)[-1]
    storage.receive_put(token=token, body=FilledBody(parts[1]), content_length=len(parts[1]))
    assert writes.seen == [(False, CHUNK_SIZE), (False, CHUNK_SIZE), (False, 100)]
    assert complete(storage, upload_id) == b"".join(parts)


def test_part_is_stored_through_the_page_cache_where_the_filesystem_refuses_o_direct(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = os.open

    def no_direct(path: str, flags: int, *args: int) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return opened(path, flags, *args)

    monkeypatch.setattr(os, "open", no_direct)
    writes = Writes(monkeypatch)
    parts = [os.urandom(PART), os.urandom(PART)]
    storage = LocalStorage(tmp_path)
    assert complete(storage, put_parts(storage, parts)) == b"".join(parts)
    assert writes.bytes_written(direct=True) == 0


def test_block_the_disk_refuses_to_take_directly_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwrite = os.pwrite

    def refusing_direct(fd: int, data: bytes | memoryview, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # an alignment the disk wants larger
        return pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", refusing_direct)
    parts = [os.urandom(PART), os.urandom(PART)]
    storage = LocalStorage(tmp_path)
    assert complete(storage, put_parts(storage, parts)) == b"".join(parts)


def test_short_direct_write_has_the_rest_written_through_the_page_cache(direct_dir: Path) -> None:
    path = direct_dir / "data"
    out = BlockWriter(path)
    real = os.pwrite
    calls: list[int] = []

    def short_once(fd: int, data: bytes | memoryview, offset: int) -> int:
        calls.append(fd)
        return real(fd, memoryview(data)[:DIRECT_ALIGNMENT] if len(calls) == 1 else data, offset)

    block = FilledBody(os.urandom(4 * DIRECT_ALIGNMENT))
    buffer = memoryview(mmap.mmap(-1, 4 * DIRECT_ALIGNMENT))
    assert block.fill(buffer) == len(buffer)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "pwrite", short_once)
        out.write(buffer, DIRECT_ALIGNMENT, aligned_memory=True)
    out.sync()
    out.close()
    assert calls[0] != calls[1]  # the rest went to the other descriptor
    assert path.read_bytes() == bytes(DIRECT_ALIGNMENT) + bytes(buffer)


def test_no_room_for_a_part_is_an_error_before_a_byte_is_written(
    direct_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    writes = Writes(monkeypatch)
    storage = LocalStorage(direct_dir)
    with pytest.raises(OSError, match="No space"):
        put_parts(storage, [os.urandom(PART)])
    assert writes.seen == []


def test_filesystem_that_cannot_reserve_space_still_stores_the_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    parts = [os.urandom(PART), os.urandom(PART)]
    storage = LocalStorage(tmp_path)
    assert complete(storage, put_parts(storage, parts)) == b"".join(parts)


def test_filled_body_ending_early_stores_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    signed = sign_part(storage, upload_id, 1, PART)
    with pytest.raises(InvalidInput):
        storage.receive_put(
            token=signed.url.rsplit("/", 1)[-1], body=FilledBody(os.urandom(PART - 1)), content_length=PART
        )
    assert storage.list_parts(key=KEY, upload_id=upload_id) == []


def test_filled_single_put_is_stored_whole(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 7)
    storage = LocalStorage(tmp_path)
    signed = storage.presign_put(key=KEY, content_type="audio/ogg", size=len(data), expires_in=60)
    token = signed.url.rsplit("/", 1)[-1]
    etag_sent = storage.receive_put(
        token=token, body=FilledBody(data), content_length=len(data), content_type="audio/ogg", if_none_match="*"
    )
    assert etag_sent == etag(data)
    assert (tmp_path / "objects" / KEY).read_bytes() == data


def test_filled_part_of_an_upload_of_the_older_layout_is_kept_in_its_record(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    directory = tmp_path / "multipart" / upload_id
    earlier = os.urandom(PART)
    (directory / f"00001.{hashlib.md5(earlier).hexdigest()}").write_bytes(earlier)
    last = os.urandom(PART)
    signed = sign_part(storage, upload_id, 2, PART)
    storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=FilledBody(last), content_length=PART)
    assert (directory / f"00002.{hashlib.md5(last).hexdigest()}").read_bytes() == last
    assert complete(storage, upload_id) == earlier + last


def test_a_read_body_is_never_written_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bytes object's memory is not page-aligned: O_DIRECT would refuse it."""
    writes = Writes(monkeypatch)
    data = os.urandom(PART)
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    signed = sign_part(storage, upload_id, 1, PART)
    storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=io.BytesIO(data), content_length=PART)
    assert writes.bytes_written(direct=True) == 0
    assert complete(storage, upload_id) == data
