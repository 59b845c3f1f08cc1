"""The local backend writes a part's bytes once, where the object will have them, and keeps S3's
semantics while doing so: a part's record always matches its bytes (re-sent, sent twice at
once, or cut off), complete publishes the whole object or nothing, abort leaves nothing."""

import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import uploads.storage.local_parts as local_parts
from uploads.storage import LocalStorage, PartsRejected, StoredPart, UploadNotFound

pytestmark = pytest.mark.once  # files only, no database

KEY = "t/a/trk/med.ogg"
SIZE = 64 * 1024


def etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def s3_multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def put_part(storage: LocalStorage, upload_id: str, number: int, body: io.RawIOBase | io.BytesIO, size: int) -> str:
    signed = storage.presign_parts(key=KEY, upload_id=upload_id, parts=[(number, size)], expires_in=60)[0]
    return storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=body, content_length=size)


def upload(storage: LocalStorage, parts: list[bytes]) -> str:
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    for number, data in enumerate(parts, start=1):
        put_part(storage, upload_id, number, io.BytesIO(data), len(data))
    return upload_id


def complete(storage: LocalStorage, upload_id: str) -> None:
    storage.complete_multipart(key=KEY, upload_id=upload_id, parts=storage.list_parts(key=KEY, upload_id=upload_id))


def stored_object(root: Path) -> bytes:
    return (root / "objects" / KEY).read_bytes()


class PausedBody(io.BytesIO):
    """A body that sends its first half, then waits for `resume` before the rest (a slow client);
    `paused` is set once the first half is read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.half = len(data) // 2
        self.paused = threading.Event()
        self.resume = threading.Event()

    def read(self, size: int | None = -1, /) -> bytes:
        if self.tell() == 0:
            return super().read(min(self.half, size if size is not None and size >= 0 else self.half))
        if not self.resume.is_set():
            self.paused.set()
            assert self.resume.wait(10)
        return super().read(size)


class CutOffBody(io.BytesIO):
    """A client that hangs up halfway through its body."""

    def read(self, size: int | None = -1, /) -> bytes:
        if self.tell() >= len(self.getbuffer()) // 2:
            raise ConnectionResetError(104, "Connection reset by peer")
        return super().read(min(len(self.getbuffer()) // 2 - self.tell(), size if size and size > 0 else SIZE))


class Call(threading.Thread):
    """Runs a storage call in a thread and keeps what it returned or raised."""

    def __init__(self, target: Callable[..., object], *args: object) -> None:
        super().__init__(daemon=True)
        self.call, self.args = target, args
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call(*self.args)
        except BaseException as exc:  # whatever it is, the test asserts on it
            self.error = exc


# --- each byte written once ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sizes", "copied"),
    [([SIZE, SIZE, SIZE], 0), ([SIZE, SIZE, 123], 123), ([SIZE], 0)],
    ids=["equal-parts", "short-last-part", "one-part"],
)
def test_parts_of_one_size_become_the_object_without_copying_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sizes: list[int], copied: int
) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(n) for n in sizes]
    upload_id = upload(storage, parts)
    copies: list[int] = []
    real_copy = local_parts.copy_range

    def counting_copy(source: int, source_offset: int, target: int, target_offset: int, length: int) -> None:
        copies.append(length)
        real_copy(source, source_offset, target, target_offset, length)

    monkeypatch.setattr(local_parts, "copy_range", counting_copy)
    complete(storage, upload_id)
    assert sum(copies) == copied  # only a last part of another size moves, once
    assert stored_object(tmp_path) == b"".join(parts)
    stored = storage.head(key=KEY)
    assert stored is not None and (stored.size, stored.etag) == (sum(sizes), s3_multipart_etag(parts))


def test_parts_of_mixed_sizes_are_copied_into_the_object_in_order(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(SIZE), os.urandom(2 * SIZE), os.urandom(SIZE), os.urandom(7)]
    upload_id = upload(storage, parts)
    complete(storage, upload_id)
    assert stored_object(tmp_path) == b"".join(parts)
    assert storage.head(key=KEY).etag == s3_multipart_etag(parts)  # type: ignore[union-attr]


def test_a_part_too_far_out_for_a_shared_file_gets_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_parts, "SLOT_SPAN_LIMIT", 2 * SIZE)
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(SIZE), os.urandom(SIZE), os.urandom(SIZE)]
    upload_id = upload(storage, parts)
    assert (tmp_path / "multipart" / upload_id / f"data.{SIZE}.3").stat().st_size == SIZE
    complete(storage, upload_id)
    assert stored_object(tmp_path) == b"".join(parts)


def test_part_records_are_sparse_files_as_long_as_their_parts(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = os.urandom(SIZE)
    upload_id = upload(storage, [data])
    record = tmp_path / "multipart" / upload_id / f"00001.{hashlib.md5(data).hexdigest()}"
    assert record.stat().st_size == SIZE
    assert storage.list_parts(key=KEY, upload_id=upload_id) == [StoredPart(1, SIZE, etag(data))]


# --- a part sent again, twice at once, or cut off --------------------------------------------------
def test_part_sent_again_with_other_bytes_keeps_the_newer_bytes_and_their_etag(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first, second, other = os.urandom(SIZE), os.urandom(SIZE), os.urandom(SIZE)
    upload_id = upload(storage, [first, other])
    assert put_part(storage, upload_id, 1, io.BytesIO(second), SIZE) == etag(second)
    assert storage.list_parts(key=KEY, upload_id=upload_id) == [
        StoredPart(1, SIZE, etag(second)),
        StoredPart(2, SIZE, etag(other)),
    ]
    complete(storage, upload_id)
    assert stored_object(tmp_path) == second + other


def test_part_sent_again_with_another_size_replaces_the_earlier_one(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first, second = os.urandom(SIZE), os.urandom(SIZE // 2)
    upload_id = upload(storage, [first])
    signed = storage.presign_parts(key=KEY, upload_id=upload_id, parts=[(1, None)], expires_in=60)[0]
    storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=io.BytesIO(second), content_length=len(second))
    assert storage.list_parts(key=KEY, upload_id=upload_id) == [StoredPart(1, len(second), etag(second))]
    complete(storage, upload_id)
    assert stored_object(tmp_path) == second


def test_two_puts_of_one_part_at_once_are_written_one_after_the_other(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    slow_bytes, fast_bytes = os.urandom(SIZE), os.urandom(SIZE)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    slow_body = PausedBody(slow_bytes)
    slow = Call(put_part, storage, upload_id, 1, slow_body, SIZE)
    slow.start()
    assert slow_body.paused.wait(10)  # half of the slow PUT's bytes are in the part's place
    fast = Call(put_part, storage, upload_id, 1, io.BytesIO(fast_bytes), SIZE)
    fast.start()
    fast.join(0.3)
    assert fast.is_alive()  # waits for the part's writer, rather than writing under it
    slow_body.resume.set()
    slow.join(10)
    fast.join(10)
    assert (slow.error, fast.error) == (None, None)
    assert (slow.result, fast.result) == (etag(slow_bytes), etag(fast_bytes))
    assert storage.list_parts(key=KEY, upload_id=upload_id) == [StoredPart(1, SIZE, etag(fast_bytes))]
    complete(storage, upload_id)
    assert stored_object(tmp_path) == fast_bytes  # the record and the bytes are the last writer's


def test_put_cut_off_midway_leaves_the_part_missing_not_its_earlier_record(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    first, other = os.urandom(SIZE), os.urandom(SIZE)
    upload_id = upload(storage, [first, other])
    earlier = storage.list_parts(key=KEY, upload_id=upload_id)
    with pytest.raises(ConnectionResetError):
        put_part(storage, upload_id, 1, CutOffBody(os.urandom(SIZE)), SIZE)
    # Half of part 1's place holds other bytes now: its earlier record must not vouch for them.
    assert storage.list_parts(key=KEY, upload_id=upload_id) == [StoredPart(2, SIZE, etag(other))]
    with pytest.raises(PartsRejected):
        storage.complete_multipart(key=KEY, upload_id=upload_id, parts=earlier)
    assert storage.head(key=KEY) is None
    put_part(storage, upload_id, 1, io.BytesIO(first), SIZE)  # sent again, it completes
    complete(storage, upload_id)
    assert stored_object(tmp_path) == first + other


def test_first_put_of_a_part_cut_off_leaves_no_bytes_behind(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    with pytest.raises(ConnectionResetError):
        put_part(storage, upload_id, 1, CutOffBody(os.urandom(SIZE)), SIZE)
    assert sorted(os.listdir(tmp_path / "multipart" / upload_id)) == ["upload.json"]


# --- complete and abort ------------------------------------------------------------------------------
def test_object_appears_only_at_complete_and_the_parts_go_with_it(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(SIZE), os.urandom(SIZE)]
    upload_id = upload(storage, parts)
    assert storage.head(key=KEY) is None
    assert not (tmp_path / "objects" / KEY).exists()
    complete(storage, upload_id)
    assert stored_object(tmp_path) == b"".join(parts)
    assert not (tmp_path / "multipart" / upload_id).exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(UploadNotFound):
        storage.list_parts(key=KEY, upload_id=upload_id)


def test_complete_cut_short_before_publishing_leaves_no_object_and_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(SIZE), os.urandom(SIZE), os.urandom(99)]
    upload_id = upload(storage, parts)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as failing:
        failing.setattr(os, "link", crash)
        with pytest.raises(OSError):
            complete(storage, upload_id)
    assert storage.head(key=KEY) is None and not (tmp_path / "objects" / KEY).exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    complete(storage, upload_id)  # the last part already moved: moving it again changes nothing
    assert stored_object(tmp_path) == b"".join(parts)
    assert storage.head(key=KEY).etag == s3_multipart_etag(parts)  # type: ignore[union-attr]


def test_part_being_written_during_complete_stays_out_of_the_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(SIZE), os.urandom(SIZE)]
    upload_id = upload(storage, parts)
    listed = storage.list_parts(key=KEY, upload_id=upload_id)
    late_body = PausedBody(os.urandom(SIZE))
    late = Call(put_part, storage, upload_id, 3, late_body, SIZE)  # lands in the same data file
    late.start()
    assert late_body.paused.wait(10)
    storage.complete_multipart(key=KEY, upload_id=upload_id, parts=listed)
    late_body.resume.set()
    late.join(10)
    assert isinstance(late.error, UploadNotFound)  # completed under it: nothing more is written
    assert stored_object(tmp_path) == b"".join(parts)


def test_abort_during_a_put_frees_everything_and_the_put_is_upload_not_found(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = upload(storage, [os.urandom(SIZE)])
    body = PausedBody(os.urandom(SIZE))
    put = Call(put_part, storage, upload_id, 2, body, SIZE)
    put.start()
    assert body.paused.wait(10)
    storage.abort_multipart(key=KEY, upload_id=upload_id)
    body.resume.set()
    put.join(10)
    assert isinstance(put.error, UploadNotFound)
    assert list((tmp_path / "multipart").iterdir()) == []


# --- uploads begun before data files ----------------------------------------------------------------
def test_upload_whose_parts_hold_their_own_bytes_keeps_that_layout_to_the_end(tmp_path: Path) -> None:
    """Parts received by an earlier version of the portal (each part's bytes in its record)."""
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=KEY, content_type="audio/ogg")
    directory = tmp_path / "multipart" / upload_id
    earlier = [os.urandom(SIZE), os.urandom(SIZE)]
    for number, data in enumerate(earlier, start=1):
        (directory / f"{number:05d}.{hashlib.md5(data).hexdigest()}").write_bytes(data)
    last = os.urandom(500)
    put_part(storage, upload_id, 3, io.BytesIO(last), len(last))
    assert not [name for name in os.listdir(directory) if name.startswith("data.")]
    assert (directory / f"00003.{hashlib.md5(last).hexdigest()}").read_bytes() == last
    complete(storage, upload_id)
    assert stored_object(tmp_path) == b"".join([*earlier, last])
    assert storage.head(key=KEY).etag == s3_multipart_etag([*earlier, last])  # type: ignore[union-attr]


def test_listing_an_upload_completed_while_it_starts_is_upload_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an error of the portal's: the resume GET then asks for the object instead."""
    storage = LocalStorage(tmp_path)
    upload_id = upload(storage, [os.urandom(SIZE)])
    found = storage._open_upload

    def found_then_completed(key: str, upload_id: str) -> Path:
        directory = found(key, upload_id)
        monkeypatch.setattr(storage, "_open_upload", found)
        complete(storage, upload_id)
        return directory

    monkeypatch.setattr(storage, "_open_upload", found_then_completed)
    with pytest.raises(UploadNotFound):
        storage.list_parts(key=KEY, upload_id=upload_id)
