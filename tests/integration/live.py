"""Real processes for the delivery tests: a Celery worker (with beat) started as a separate
process against Redis and the test database, and a TCP proxy in front of the SQS endpoint that
can go down, or swallow requests or responses, as a network does."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from portal.celery import app as celery_app

REQUIRE_SERVICES = "PORTAL_REQUIRE_SERVICES"


def require_service(reachable: bool, reason: str) -> None:
    """Skip where a service is absent, but never in CI, which sets PORTAL_REQUIRE_SERVICES."""
    if reachable:
        return
    if os.environ.get(REQUIRE_SERVICES):
        pytest.fail(f"{reason}; {REQUIRE_SERVICES} is set, so this must not be skipped")
    pytest.skip(reason)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@contextmanager
def publishing_to(broker_url: str, queue: str = "celery") -> Iterator[None]:
    """This process publishes tasks to `queue` on `broker_url` instead of running them eagerly,
    as the web process does in production. Pooled connections keep the broker they were made
    for, so the pools are reset on the way in and out (eager calls borrow a producer too)."""
    conf = celery_app.conf
    keys = ("task_always_eager", "broker_url", "broker_transport_options", "task_default_queue")
    saved = {key: conf[key] for key in keys}
    conf.update(task_always_eager=False, broker_url=broker_url, broker_transport_options={}, task_default_queue=queue)
    celery_app._after_fork()  # type: ignore[attr-defined]  # Celery's own reset of its pools
    try:
        yield
    finally:
        conf.update(saved)
        celery_app._after_fork()  # type: ignore[attr-defined]


def database_url() -> str:
    """The test database, as the worker process must reach it."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A portal worker -B`, in its own process group so a test can SIGKILL all of it
    (the main process, its pool children and the embedded beat) at once."""

    def __init__(self, *, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"worker-{self.starts}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat",
            "--schedule", str(self.workdir / "beat-schedule"), "--loglevel", "INFO", "--concurrency", "2",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"test{self.starts}@%h",
        ]  # fmt: skip
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.process = process
        wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None, timeout=60, what="worker")
        if process.poll() is not None:
            raise AssertionError(f"worker exited at start:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log")))

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost host does: nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


class FaultyProxy:
    """Forwards TCP to `upstream`. `down()` stops listening (connection refused) and cuts open
    connections; `hold("requests" | "responses")` swallows what crosses next in that direction,
    so a test can kill the sender before SQS gets a message, or after SQS took it but before the
    sender learns so."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self.holding: str | None = None
        self.held = threading.Event()
        self._release = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        assert self._listener is not None
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._cut_all()

    def hold(self, direction: str) -> None:
        self.held.clear()
        self._release.clear()
        self.holding = direction

    def release(self) -> None:
        """What was held is dropped, never delivered; later traffic flows again."""
        self.holding = None
        self._release.set()
        self._cut_all()

    def close(self) -> None:
        self.release()
        if self._listener is not None:
            self._listener.close()

    def _cut_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, "requests"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "responses"), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(65536):
                if self.holding == direction:
                    self.held.set()
                    self._release.wait()
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def receive_all(client: Any, queue_url: str) -> list[dict[str, Any]]:
    """Drains the queue: every message it holds, each deleted once read."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def worker_env(*, data_dir: Path, broker: tuple[str, str], aws_endpoint: str, **extra: str) -> dict[str, str]:
    """A worker's environment: the test database and broker, fake AWS credentials reaching
    `aws_endpoint`, and the outbox's schedule compressed from minutes to seconds. `extra`: the
    test's own settings."""
    from tests.conftest import REGION

    return {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "PORTAL_DATA_DIR": str(data_dir),
        "SECRET_KEY": "test-only-secret-key-not-for-production",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker[0],
        "CELERY_TASK_DEFAULT_QUEUE": broker[1],
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "OUTBOX_BACKOFF_BASE_SECONDS": "1",
        "OUTBOX_BACKOFF_MAX_SECONDS": "2",
        "OUTBOX_MAX_ATTEMPTS": "1000",
        "OUTBOX_STALE_CLAIM_SECONDS": "3",
        "OUTBOX_RELAY_INTERVAL_SECONDS": "1",
        **extra,
    }
