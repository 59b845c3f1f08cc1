"""A real gunicorn serving the portal for a test: the settings come from `env` (its own data
directory and SQLite file), the server runs in its own process group so stopping it stops its
workers too."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    return ready


@contextmanager
def running_gunicorn(*, port: int, env: dict[str, str], workers: int, ready: Callable[[], bool]) -> Iterator[None]:
    """Until `ready()` is true (an OSError counts as not yet), then for the `with` block."""
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "portal.wsgi",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=gthread",
            "--threads=2",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if ready():
                    break
            except OSError:
                pass
            assert server.poll() is None, f"gunicorn exited with {server.returncode}"
            assert time.monotonic() < deadline, f"gunicorn did not answer within {START_SECONDS} s"
            time.sleep(0.1)
        yield
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
