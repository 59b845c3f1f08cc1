"""What the portal writes to disk is its own: under the usual umask 022, the data directory, the
secret key, the SQLite database, stored objects (with their metadata, parts, temp and lock files)
and queue files get no group or other permission bits."""

import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from uploads.queue.base import QueueMessage
from uploads.queue.local import LocalQueue
from uploads.storage import LocalStorage
from uploads.storage.local_signing import PostPolicy

pytestmark = pytest.mark.once  # files only, no database

ROOT = Path(__file__).resolve().parents[2]
KEY = "t/a/trk/med.jpg"


def opened_to_others(root: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    """Every path under `root` (and root itself) with a group or other permission bit."""
    found = []
    for path in [root, *root.rglob("*")]:
        relative = path.relative_to(root)
        if relative.parts and relative.parts[0] in skip:
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{relative} {oct(mode)}")
    return found


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_embedded_start_creates_data_dir_secret_key_and_database_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "deploy" / "var"  # parents made too: only DATA_DIR itself must be private
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "portal.settings",  # the embedded defaults, read at import
        "PORTAL_DATA_DIR": str(data_dir),
    }
    # The modes are read by the child while its connection is open: SQLite removes the -wal
    # and -shm files when the last connection closes.
    script = (
        "import django, json, os, stat; django.setup()\n"
        "from django.conf import settings; from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('CREATE TABLE probe (x INTEGER)')\n"
        "    cursor.execute('INSERT INTO probe VALUES (1)')\n"
        "    modes = {str(p.relative_to(settings.DATA_DIR)): stat.S_IMODE(p.lstat().st_mode)\n"
        "             for p in [settings.DATA_DIR, *settings.DATA_DIR.rglob('*')]}\n"
        "print(json.dumps(modes))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask, in the child only
    )
    modes: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    assert {".", "secret_key", "portal.sqlite3", "portal.sqlite3-wal", "portal.sqlite3-shm", "broker"} <= set(modes)
    # static/: collectstatic's public files (unreachable anyway through the private DATA_DIR)
    opened = {path: oct(mode) for path, mode in modes.items() if mode & 0o077 and not path.startswith("static")}
    assert opened == {}


def test_stored_objects_parts_and_metadata_are_private(tmp_path: Path, umask_022: None) -> None:
    storage = LocalStorage(tmp_path / "storage")
    signed = storage.presign_put(key=KEY, content_type="image/jpeg", size=5, expires_in=60)
    storage.receive_put(
        token=signed.url.rsplit("/", 1)[-1],
        body=io.BytesIO(b"photo"),
        content_length=5,
        content_type="image/jpeg",
        if_none_match="*",
    )
    upload_id = storage.create_multipart(key="t/a/trk/med.ogg", content_type="audio/ogg")
    part = storage.presign_parts(key="t/a/trk/med.ogg", upload_id=upload_id, parts=[(1, 4)], expires_in=60)[0]
    storage.receive_put(token=part.url.rsplit("/", 1)[-1], body=io.BytesIO(b"part"), content_length=4)
    incoming = storage.open_incoming(PostPolicy(key="t/a/trk/form.jpg", content_type="image/jpeg", max_bytes=10))
    incoming.write(b"form")
    assert (tmp_path / "storage" / "multipart" / upload_id).is_dir()
    assert any((tmp_path / "storage" / "tmp").iterdir())  # the form's file in flight
    assert opened_to_others(tmp_path / "storage") == []
    incoming.publish()
    storage.complete_multipart(
        key="t/a/trk/med.ogg",
        upload_id=upload_id,
        parts=storage.list_parts(key="t/a/trk/med.ogg", upload_id=upload_id),
    )
    assert (tmp_path / "storage" / "objects" / "t/a/trk/med.ogg").read_bytes() == b"part"
    assert opened_to_others(tmp_path / "storage") == []


def test_lock_files_are_private_while_held(tmp_path: Path, umask_022: None) -> None:
    from uploads.storage.files import locked

    with locked(tmp_path / "object.json"):
        assert opened_to_others(tmp_path) == []
        assert (tmp_path / "object.json.lock").exists()


def test_local_queue_file_and_directory_are_private(tmp_path: Path, umask_022: None) -> None:
    queue = LocalQueue(tmp_path / "queue" / "processing.jsonl")
    queue.publish_batch([QueueMessage(body={"trackingId": "trk_1"})])
    assert [m["body"] for m in queue.messages()] == [{"trackingId": "trk_1"}]
    assert opened_to_others(tmp_path) == []
