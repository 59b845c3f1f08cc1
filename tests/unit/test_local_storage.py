"""The local backend assembles parts byte for byte, with or without the kernel's copy_file_range."""

import hashlib
import io
import os
from pathlib import Path

import pytest

from uploads.errors import AlreadyStored
from uploads.storage import LocalStorage, UploadNotFound


def upload_parts(storage: LocalStorage, parts: list[bytes]) -> str:
    upload_id = storage.create_multipart(key="t/a/trk/med.ogg", content_type="audio/ogg")
    for number, data in enumerate(parts, start=1):
        signed = storage.presign_parts(
            key="t/a/trk/med.ogg", upload_id=upload_id, parts=[(number, len(data))], expires_in=60
        )[0]
        token = signed.url.rstrip("/").rsplit("/", 1)[-1]
        storage.receive_put(token=token, body=io.BytesIO(data), content_length=len(data), content_type="")
    return upload_id


@pytest.mark.parametrize("kernel_copy", ["available", "refused", "missing"])
def test_assembled_object_is_the_parts_in_order_with_s3s_etag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: str
) -> None:
    if kernel_copy == "refused":

        def refuse(*args: object) -> int:
            raise OSError(95, "Operation not supported")

        monkeypatch.setattr(os, "copy_file_range", refuse)
    elif kernel_copy == "missing":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(70_000), os.urandom(70_000), os.urandom(123)]
    upload_id = upload_parts(storage, parts)
    storage.complete_multipart(
        key="t/a/trk/med.ogg", upload_id=upload_id, parts=storage.list_parts(key="t/a/trk/med.ogg", upload_id=upload_id)
    )
    assert (tmp_path / "objects" / "t/a/trk/med.ogg").read_bytes() == b"".join(parts)
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    stored = storage.head(key="t/a/trk/med.ogg")
    assert stored is not None
    assert stored.etag == f'"{hashlib.md5(digests).hexdigest()}-3"'
    assert stored.size == sum(map(len, parts))


def test_part_arriving_while_the_upload_is_aborted_is_upload_not_found(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key="t/a/trk/med.ogg", content_type="audio/ogg")
    signed = storage.presign_parts(key="t/a/trk/med.ogg", upload_id=upload_id, parts=[(1, 10)], expires_in=60)[0]

    class AbortedMidway(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            storage.abort_multipart(key="t/a/trk/med.ogg", upload_id=upload_id)
            return super().read(size)

    with pytest.raises(UploadNotFound):
        storage.receive_put(
            token=signed.url.rsplit("/", 1)[-1], body=AbortedMidway(b"0123456789"), content_length=10, content_type=""
        )
    assert not (tmp_path / "multipart" / upload_id).exists()


def test_single_put_cut_short_before_its_metadata_can_be_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uploads.storage.local as local

    storage = LocalStorage(tmp_path)
    signed = storage.presign_put(key="t/a/trk/med.jpg", content_type="image/jpeg", size=5, expires_in=60)
    token = signed.url.rsplit("/", 1)[-1]

    def disk_full(path: Path, data: dict[str, object]) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as failing:
        failing.setattr(local, "write_json_atomic", disk_full)
        with pytest.raises(OSError):
            storage.receive_put(
                token=token, body=io.BytesIO(b"first"), content_length=5, content_type="image/jpeg", if_none_match="*"
            )
    assert storage.head(key="t/a/trk/med.jpg") is None  # bytes without metadata are not an object

    etag = storage.receive_put(
        token=token, body=io.BytesIO(b"again"), content_length=5, content_type="image/jpeg", if_none_match="*"
    )
    stored = storage.head(key="t/a/trk/med.jpg")
    assert stored is not None and stored.etag == etag == f'"{hashlib.md5(b"again").hexdigest()}"'
    assert (tmp_path / "objects" / "t/a/trk/med.jpg").read_bytes() == b"again"
    with pytest.raises(AlreadyStored):
        storage.receive_put(
            token=token, body=io.BytesIO(b"third"), content_length=5, content_type="image/jpeg", if_none_match="*"
        )
