"""The command line against the live portal: `resume` finishes what an interrupted run left,
`status --watch` ends with the submission's outcome as its exit status, `abort` frees an upload."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from tests.client.conftest import PART, client
from tests.helpers import object_bytes
from uploads.client.errors import EXIT_OK, EXIT_SUBMISSION_FAILED
from uploads.client.http import Transport

# The client is what these test, not the database: CI runs them once, on SQLite.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("small_parts"), pytest.mark.once]
ROOT = Path(__file__).resolve().parents[2]


def cli(live_server: LiveServer, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(CATALOG_API_URL=live_server.url, CATALOG_API_KEY=key)
    return subprocess.run(
        [sys.executable, "-m", "uploads.client", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_resume_without_arguments_finishes_every_interrupted_upload_in_the_state_directory(
    live_server: LiveServer,
    keys: dict[str, str],
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo, audio = files
    real_put = Transport.put
    sent: list[str] = []

    def put_then_crash(self: Transport, url: str, headers: Any, body: Any) -> requests.Response:
        if len(sent) == 3:
            raise KeyboardInterrupt
        sent.append(url)
        return real_put(self, url, headers, body)

    monkeypatch.setattr(Transport, "put", put_then_crash)
    with client(live_server, keys["tenant_a"], tmp_path, concurrency=1) as catalog, pytest.raises(KeyboardInterrupt):
        catalog.submit(photo, audio, "art_1", "ta", "low")
    assert len(list((tmp_path / "state").glob("upload-*.json"))) == 1

    done = cli(live_server, keys["tenant_a"], "resume", "--state-dir", str(tmp_path / "state"), "--json")
    assert done.returncode == EXIT_OK, done.stderr
    result = json.loads(done.stdout)
    assert result["files"]["audio"]["partsResumed"] == 2 and result["files"]["audio"]["partsSent"] == 4
    assert object_bytes(result["files"]["audio"]["key"]) == audio.read_bytes()
    assert not list((tmp_path / "state").glob("upload-*.json"))


def test_status_watch_exits_7_when_the_pipeline_reports_failure(
    live_server: LiveServer, keys: dict[str, str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    photo, audio = files
    with client(live_server, keys["tenant_a"], tmp_path) as catalog:
        tracking_id = catalog.submit(photo, audio, "art_1", "hi").tracking_id
    reported = requests.post(
        f"{live_server.url}/v1/catalog/status/{tracking_id}/events",
        json={"eventId": "e1", "stage": "failed", "errorDetails": {"reason": "blurry"}},
        headers={"Authorization": f"Bearer {keys['tenant_a:pipeline']}"},
        timeout=10,
    )
    assert reported.status_code == 200, reported.text
    watched = cli(live_server, keys["tenant_a"], "status", tracking_id, "--watch", "--json", "--interval", "0.2")
    assert watched.returncode == EXIT_SUBMISSION_FAILED
    assert json.loads(watched.stdout)["errorDetails"] == {"reason": "blurry"}


def test_abort_frees_an_unfinished_upload_and_another_tenants_media_is_not_found(
    live_server: LiveServer, keys: dict[str, str], tmp_path: Path
) -> None:
    with client(live_server, keys["tenant_a"], tmp_path) as catalog:
        plan = catalog.initiate(artisan_id="art_1", content_type="audio/wav", file_size=3 * PART)
    other = cli(live_server, keys["tenant_b"], "abort", plan["mediaId"], "--json")
    assert other.returncode == 3 and json.loads(other.stdout)["error"]["status"] == 404
    done = cli(live_server, keys["tenant_a"], "abort", plan["mediaId"])
    assert done.returncode == EXIT_OK and done.stdout.strip() == f"{plan['mediaId']}: aborted"
