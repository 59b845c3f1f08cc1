"""A key revoked by `manage.py revoke_api_key`, a process of its own, stops working on every
web process of a real gunicorn (several workers, each remembering keys for up to 5 s) within
those 5 s, with nothing sent between the processes."""

import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenants.api_key_cache import CACHE_SECONDS
from tests.integration.live_gunicorn import ROOT, free_port, running_gunicorn

STATUS = "/v1/catalog/status/trk_000000000000000000000000"  # 404 with a live key, 401 without
WORKERS = 3
pytestmark = pytest.mark.slow


class Portal:
    def __init__(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_SETTINGS_MODULE"))},
            "PORTAL_DATA_DIR": str(data),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "LOG_LEVEL": "WARNING",
            "API_RATE_PER_KEY": "off",
            "API_RATE_PER_TENANT": "off",
        }
        self.port = free_port()
        self.key = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def status_code(self) -> int:
        """One request on a connection of its own, so gunicorn may hand it to any worker."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", STATUS, headers={"Authorization": f"Bearer {self.key}"})
            return connection.getresponse().status
        finally:
            connection.close()


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    portal = Portal(tmp_path)
    portal.manage("migrate", "--no-input")
    portal.manage("create_tenant", "tenant_live", "--name", "Live")
    portal.key = portal.manage("create_api_key", "tenant_live").strip().splitlines()[-1]
    with running_gunicorn(port=portal.port, env=portal.env, workers=WORKERS, ready=lambda: portal.status_code() == 404):
        yield portal


def test_a_key_revoked_by_the_command_is_refused_by_every_worker_within_five_seconds(portal: Portal) -> None:
    for _ in range(20 * WORKERS):  # every worker has looked the key up and remembers it
        assert portal.status_code() == 404
    assert "Revoked" in portal.manage("revoke_api_key", portal.key[:12])
    committed_by = time.monotonic()  # the command has returned: its revocation is committed
    last_taken = committed_by
    while time.monotonic() - committed_by < CACHE_SECONDS + 1:
        sent = time.monotonic()
        if portal.status_code() == 404:  # a worker still remembers the key as live
            last_taken = sent
        time.sleep(0.02)
    assert last_taken - committed_by <= CACHE_SECONDS
    assert all(portal.status_code() == 401 for _ in range(20 * WORKERS))
