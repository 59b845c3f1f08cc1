"""The library against the real portal in this process (pytest-django's live server, local
storage): it speaks only HTTP, so what these tests see is what an app developer gets.
The subprocess, SIGKILL, corrupting-proxy and S3 runs are in tests/integration/test_client_resilience.py."""

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import override_settings
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from tenants.models import ApiKey
from tests.client.conftest import PART, client
from tests.helpers import object_bytes
from uploads.client import CatalogError
from uploads.client import parts as parts_module
from uploads.client.http import Transport
from uploads.client.state import FileState, UploadState

# The client is what these test, not the database: CI runs them once, on SQLite.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("small_parts"), pytest.mark.once]


def test_submit_uploads_both_files_byte_identical_and_hands_the_submission_on(
    live_server: LiveServer, keys: dict[str, str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    photo, audio = files
    with client(live_server, keys["tenant_a"], tmp_path) as catalog:
        result = catalog.submit(photo, audio, "art_1", "hi", "high")
        status = catalog.wait(result.tracking_id, until=("queued",), timeout=30, interval=0.2)
    assert object_bytes(result.photo.key) == photo.read_bytes()
    assert object_bytes(result.audio.key) == audio.read_bytes()
    assert (result.photo.parts_total, result.audio.parts_total, result.audio.parts_sent) == (1, 6, 6)
    assert status["stage"] == "queued" and {f["status"] for f in status["files"]} == {"uploaded"}
    assert not list((tmp_path / "state").glob("upload-*.json"))  # nothing left to resume


def test_an_interrupted_submit_resumes_sending_only_the_parts_storage_lacks(
    live_server: LiveServer,
    keys: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo, audio = files
    real_put = Transport.put
    puts: list[str] = []

    def put_then_crash(self: Transport, url: str, headers: Any, body: Any) -> requests.Response:
        if len(puts) == 4:  # the photo and three audio parts reached storage
            raise KeyboardInterrupt
        puts.append(url)
        return real_put(self, url, headers, body)

    monkeypatch.setattr(Transport, "put", put_then_crash)
    with client(live_server, keys["tenant_a"], tmp_path, concurrency=1) as catalog, pytest.raises(KeyboardInterrupt):
        catalog.submit(photo, audio, "art_1", "hi")
    monkeypatch.setattr(Transport, "put", real_put)
    tracking_id = json.loads(next((tmp_path / "state").glob("upload-*.json")).read_text())["trackingId"]

    with client(live_server, keys["tenant_a"], tmp_path) as catalog:
        # The progress notes of the parts sent before the crash reached the portal.
        recorded = {f["kind"]: f["bytesRecorded"] for f in catalog.status(tracking_id)["files"]}
        assert recorded == {"photo": photo.stat().st_size, "audio": 3 * PART}
        result = catalog.submit(photo, audio, "art_1", "hi")
    assert (result.photo.parts_sent, result.photo.parts_resumed) == (0, 1)
    assert (result.audio.parts_sent, result.audio.parts_resumed) == (3, 3)
    assert object_bytes(result.audio.key) == audio.read_bytes()


def test_a_file_changed_between_runs_starts_over_and_aborts_the_old_upload(
    live_server: LiveServer,
    keys: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo, audio = files
    real_put = Transport.put
    monkeypatch.setattr(Transport, "put", lambda self, url, headers, body: (_ for _ in ()).throw(KeyboardInterrupt))
    with client(live_server, keys["tenant_a"], tmp_path) as catalog, pytest.raises(KeyboardInterrupt):
        catalog.submit(photo, audio, "art_1", "hi")
    monkeypatch.setattr(Transport, "put", real_put)
    state = next((tmp_path / "state").glob("upload-*.json")).read_text()
    old_media = state.split('"mediaId": "')[1].split('"')[0]

    photo.write_bytes(os.urandom(150_000))  # a new photo under the same name
    with client(live_server, keys["tenant_a"], tmp_path) as catalog:
        result = catalog.submit(photo, audio, "art_1", "hi")
        assert catalog.progress(old_media)["status"] == "aborted"
    assert result.photo.media_id != old_media
    assert object_bytes(result.photo.key) == photo.read_bytes()


def test_an_expired_part_url_is_signed_again_not_fatal(
    live_server: LiveServer,
    keys: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo, audio = files
    monkeypatch.setattr(parts_module, "URL_MARGIN_SECONDS", -10)  # the client trusts URLs past their expiry
    real_put = Transport.put
    answers: list[int] = []

    def slow_first_put(self: Transport, url: str, headers: Any, body: Any) -> requests.Response:
        if not answers:
            time.sleep(1.5)  # the 1 s URL expires on the way
        response = real_put(self, url, headers, body)
        answers.append(response.status_code)
        return response

    monkeypatch.setattr(Transport, "put", slow_first_put)
    with (
        override_settings(UPLOADS_PART_URL_EXPIRY_SECONDS=1, UPLOADS_URL_EXPIRY_SECONDS=1),
        client(live_server, keys["tenant_a"], tmp_path, concurrency=1) as catalog,
    ):
        result = catalog.submit(photo, audio, "art_1", "hi")
    assert answers[0] == 403 and answers.count(200) == 1 + 6
    assert object_bytes(result.photo.key) == photo.read_bytes()


def test_a_state_file_naming_another_tenants_upload_starts_a_new_one_in_the_callers_tenant(
    live_server: LiveServer, keys: dict[str, str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    photo, audio = files
    with client(live_server, keys["tenant_b"], tmp_path / "b") as other:
        theirs = other.upload_file(audio, "art_1")
    ours = client(live_server, keys["tenant_a"], tmp_path)
    state_file = ours.state_file_for(photo, audio, "art_1", None)
    # A state file copied from tenant B's machine, naming B's upload for the audio.
    forged = UploadState(base_url=ours.base_url, artisan_id="art_1", paths={"photo": str(photo), "audio": str(audio)})
    stat = audio.stat()
    forged.files["audio"] = FileState(
        path=str(audio),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        content_type="audio/wav",
        media_id=theirs.media_id,
        tracking_id=theirs.tracking_id,
        key=theirs.key,
        strategy="multipart",
        part_size=PART,
        num_parts=6,
    )
    state_file.save(forged)
    with ours:
        result = ours.submit(photo, audio, "art_1", "hi")
    assert result.audio.media_id != theirs.media_id and result.audio.key.startswith("tenant_a/")
    assert object_bytes(theirs.key) == audio.read_bytes()  # B's object untouched


def test_a_refusal_carries_the_portals_code_and_is_not_retried(
    live_server: LiveServer, keys: dict[str, str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a photo")
    with client(live_server, keys["tenant_a"], tmp_path) as catalog, pytest.raises(CatalogError) as caught:
        catalog.upload_file(text, "art_1")
    assert caught.value.status == 415 and caught.value.code == "unsupported_media_type"


def test_a_revoked_key_is_an_authentication_error(
    live_server: LiveServer, keys: dict[str, str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    ApiKey.objects.update(revoked_at=timezone.now())
    with client(live_server, keys["tenant_a"], tmp_path) as catalog, pytest.raises(CatalogError) as caught:
        catalog.status("trk_0123456789abcdef01234567")
    assert caught.value.status == 401 and caught.value.exit_code == 4
