"""`make serve` (deploy/serve.sh) as an operator meets it: it refuses to start without a
SECRET_KEY; started, it answers /healthz, serves collected static files through WhiteNoise under
hashed names (the upload page's ES modules importing each other's hashed names), runs a Celery
worker and beat beside gunicorn, and Ctrl-C's SIGTERM stops every process it started."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.conftest import REDIS_URL
from tests.integration.live import require_service, wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "deploy" / "serve.sh"

# The processes' own database is a SQLite file of their own: nothing here depends on the suite's.
pytestmark = pytest.mark.once


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PORTAL_BIN": str(Path(sys.executable).parent),
        "SERVE_ENV_FILE": str(tmp_path / "serve.env"),
        "PORTAL_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": f"serve-{uuid.uuid4().hex}",
        "CACHE_URL": REDIS_URL,
        **extra,
    }


def test_serve_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = subprocess.run([str(SERVE)], env=_env(tmp_path), capture_output=True, text=True, timeout=30)

    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "portal.sqlite3").exists()  # nothing ran: no migration


def test_serve_reads_settings_from_its_env_file_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "serve.env").write_text("# comment\nSECRET_KEY=from-the-file\nWEB_CONCURRENCY=7\n")
    # `prepare` with a stand-in python that prints what `manage.py migrate` would run with.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python").write_text('#!/bin/sh\n[ "$2" = migrate ] && echo "$SECRET_KEY $WEB_CONCURRENCY"\nexit 0\n')
    (fake_bin / "python").chmod(0o755)

    result = subprocess.run(
        [str(SERVE), "prepare"],
        env=_env(tmp_path, PORTAL_BIN=str(fake_bin), WEB_CONCURRENCY="3"),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from-the-file", "3"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require_service(reachable, "Redis is not running on 127.0.0.1:6379")
    port = _free_port()
    env = _env(tmp_path, SECRET_KEY="serve-smoke-test-key", GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(SERVE)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_serve_runs_web_worker_and_beat_serves_hashed_static_files_and_stops_on_sigterm(
    served: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base, process, log = served

    def healthy() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=90, what="make serve to answer /healthz")
    wait_for(lambda: b" ready." in log.read_bytes() and b"beat: Starting" in log.read_bytes(), timeout=60,
             what="the Celery worker and beat")  # fmt: skip

    landing = requests.get(f"{base}/", timeout=5)
    assert landing.status_code == 200
    css = re.search(r"/static/uploads/base\.[0-9a-f]{12}\.css", landing.text)
    assert css, "the landing page links the hashed stylesheet"
    styles = requests.get(base + css.group(0), headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert styles.status_code == 200
    assert "immutable" in styles.headers["Cache-Control"]
    assert styles.headers["Content-Encoding"] == "gzip"
    # The upload page's entry module imports its siblings by their hashed names, each served.
    collected = sorted((log.parent / "data" / "static" / "uploads").glob("page.*.js"))
    page = requests.get(f"{base}/static/uploads/{collected[0].name}", timeout=5)
    imports = re.findall(r'from "\./([^"]+)"', page.text)
    assert imports and all(re.fullmatch(r"[a-z-]+\.[0-9a-f]{12}\.js", name) for name in imports), imports
    for name in imports:
        assert requests.get(f"{base}/static/uploads/{name}", timeout=5).status_code == 200

    os.kill(process.pid, signal.SIGTERM)  # the script's own pid, as Ctrl-C or systemd would
    assert process.wait(timeout=60) == 143
    # Every process it started (gunicorn and its workers, the Celery worker and pool, beat) is gone.
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, subprocess.run(["ps", "-o", "pid,args", "-g", str(process.pid)],
                                                           capture_output=True, text=True).stdout  # fmt: skip
        time.sleep(0.2)
