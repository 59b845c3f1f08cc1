"""The local backend leaves nothing behind: a publish that fails removes its temporary file, and
the lock files that serialise writers go when their holder leaves, without ever letting two
writers in at once."""

import io
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from uploads.storage import LocalStorage
from uploads.storage.files import locked
from uploads.storage.local_signing import PostPolicy

pytestmark = pytest.mark.once  # files only, no database

KEY = "t/a/trk/med.jpg"
AUDIO_KEY = "t/a/trk/med.ogg"


def files_under(root: Path, pattern: str = "*") -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(pattern) if p.is_file())


def put(storage: LocalStorage, data: bytes = b"photo", key: str = KEY) -> str:
    signed = storage.presign_put(key=key, content_type="image/jpeg", size=len(data), expires_in=60)
    return storage.receive_put(
        token=signed.url.rsplit("/", 1)[-1],
        body=io.BytesIO(data),
        content_length=len(data),
        content_type="image/jpeg",
        if_none_match="*",
    )


def open_upload(storage: LocalStorage, data: bytes = b"part") -> str:
    upload_id = storage.create_multipart(key=AUDIO_KEY, content_type="audio/ogg")
    signed = storage.presign_parts(key=AUDIO_KEY, upload_id=upload_id, parts=[(1, len(data))], expires_in=60)[0]
    storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=io.BytesIO(data), content_length=len(data))
    return upload_id


def fail_replace_into(monkeypatch: pytest.MonkeyPatch, area: str) -> None:
    """os.replace fails (disk error) for any destination under `area`/ of the storage root."""
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if f"/{area}/" in str(dst):
            raise OSError(5, "Input/output error")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("area", ["objects", "meta"])
def test_single_put_whose_publish_fails_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, area: str
) -> None:
    storage = LocalStorage(tmp_path)
    with monkeypatch.context() as failing:
        fail_replace_into(failing, area)
        with pytest.raises(OSError):
            put(storage)
    assert files_under(tmp_path / "tmp") == []
    assert files_under(tmp_path / "meta") == []  # no half-written metadata copy either
    put(storage, b"again")  # and the PUT can be sent again
    assert storage.head(key=KEY) is not None


def test_completion_whose_publish_fails_leaves_no_temp_file_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = open_upload(storage)
    parts = storage.list_parts(key=AUDIO_KEY, upload_id=upload_id)
    with monkeypatch.context() as failing:
        fail_replace_into(failing, "objects")
        with pytest.raises(OSError):
            storage.complete_multipart(key=AUDIO_KEY, upload_id=upload_id, parts=parts)
    assert files_under(tmp_path / "tmp") == []
    storage.complete_multipart(key=AUDIO_KEY, upload_id=upload_id, parts=parts)
    assert (tmp_path / "objects" / AUDIO_KEY).read_bytes() == b"part"


def test_form_post_whose_publish_fails_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    incoming = storage.open_incoming(PostPolicy(key=KEY, content_type="image/jpeg", max_bytes=100))
    incoming.write(b"form bytes")
    with monkeypatch.context() as failing:
        fail_replace_into(failing, "objects")
        with pytest.raises(OSError):
            incoming.publish()
    assert files_under(tmp_path / "tmp") == []


def test_form_post_refused_as_already_stored_leaves_no_temp_file(tmp_path: Path) -> None:
    from uploads.errors import AlreadyStored

    storage = LocalStorage(tmp_path)
    put(storage)
    incoming = storage.open_incoming(PostPolicy(key=KEY, content_type="image/jpeg", max_bytes=100))
    incoming.write(b"other bytes")
    with pytest.raises(AlreadyStored):
        incoming.publish()
    assert files_under(tmp_path / "tmp") == []


def test_part_whose_rename_fails_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    upload_id = storage.create_multipart(key=AUDIO_KEY, content_type="audio/ogg")
    signed = storage.presign_parts(key=AUDIO_KEY, upload_id=upload_id, parts=[(1, 4)], expires_in=60)[0]
    with monkeypatch.context() as failing:
        fail_replace_into(failing, "multipart")
        with pytest.raises(OSError):
            storage.receive_put(token=signed.url.rsplit("/", 1)[-1], body=io.BytesIO(b"part"), content_length=4)
    assert files_under(tmp_path / "multipart" / upload_id) == ["upload.json"]


def test_no_lock_file_stays_after_put_complete_abort_or_delete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    put(storage)
    completed = open_upload(storage)
    storage.complete_multipart(
        key=AUDIO_KEY, upload_id=completed, parts=storage.list_parts(key=AUDIO_KEY, upload_id=completed)
    )
    aborted = open_upload(storage)
    storage.abort_multipart(key=AUDIO_KEY, upload_id=aborted)
    storage.delete(key=KEY)
    assert files_under(tmp_path, "*.lock") == []
    assert files_under(tmp_path / "tmp") == []


def test_lock_file_is_removed_and_writers_still_never_overlap(tmp_path: Path) -> None:
    """Eight threads take the lock of one path 100 times each while every holder removes the
    lock file on leaving: a taker woken on a removed file must start again, or two are in."""
    target = tmp_path / "object.json"
    inside = 0
    overlaps = 0
    guard = threading.Lock()

    def writer() -> None:
        nonlocal inside, overlaps
        for _ in range(100):
            with locked(target):
                with guard:
                    inside += 1
                    overlaps += inside > 1
                time.sleep(0)  # let the others pile up on the lock file
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == 0
    assert not (tmp_path / "object.json.lock").exists()


def test_form_post_whose_bytes_cannot_be_synced_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path)
    incoming = storage.open_incoming(PostPolicy(key=KEY, content_type="image/jpeg", max_bytes=100))
    incoming.write(b"form bytes")

    def fsync_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as failing:
        failing.setattr(os, "fsync", fsync_fails)
        with pytest.raises(OSError):
            incoming.publish()
    assert files_under(tmp_path / "tmp") == []
