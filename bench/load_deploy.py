"""The load test's deployment: the processes `make serve` runs (deploy/serve.sh web | worker |
beat), started one by one so a test can kill and restart any of them, against a fresh
PostgreSQL database and the local Redis; and the faults (a worker SIGKILLed, Redis restarted)."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVE = ROOT / "deploy" / "serve.sh"
TENANT_ID = "tenant_load"
REDIS_URL = "redis://127.0.0.1:6379"
# The local Redis as .ci/run and the machine's set-up start it: no persistence, so a restart
# loses every task queued in the broker (the outbox relay must make up for them).
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/tmp",
]  # fmt: skip
# Settings that would move the processes off the local services this test measures.
_NOT_HERE = ("S3_RAW_MEDIA_BUCKET", "SQS_QUEUE_URL", "SQS_STATUS_QUEUE_URL", "DYNAMODB_CATALOG_TABLE")


class LoadTestError(RuntimeError):
    pass


class Deployment:
    """`with Deployment(...) as d:` creates the database, migrates and collects static files
    (deploy/serve.sh prepare), creates a tenant and API keys with the management commands, starts
    gunicorn, the Celery workers and beat, and stops them and drops the database on exit."""

    def __init__(self, *, admin_url: str, database: str, web_workers: int, celery_workers: int, keys: int,
                 extra_env: dict[str, str], keep: bool, ready_path: str = "/healthz") -> None:  # fmt: skip
        self.admin_url = admin_url
        self.database = database
        self.web_workers = web_workers
        self.celery_workers = celery_workers
        self.key_count = keys
        self.keep = keep
        self.ready_path = ready_path
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="portal-load-"))
        self.data_dir = self.tmp_dir / "data"
        self.log_dir = self.tmp_dir / "logs"
        self.log_dir.mkdir()
        self.port = _free_port()
        self.database_url = _database_url(admin_url, database)
        self.api_keys: list[str] = []
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_HERE}
        self.env.update(
            SERVE_ENV_FILE="/nonexistent",  # an operator's deploy/serve.env must not leak in
            PORTAL_BIN=str(BIN),
            SECRET_KEY=secrets.token_urlsafe(50),
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=f"{REDIS_URL}/0",
            # Its own broker queue: other Celery workers on this Redis never take its tasks.
            CELERY_TASK_DEFAULT_QUEUE=f"load-test-{os.getpid()}",
            CACHE_URL=f"{REDIS_URL}/1",
            PORTAL_DATA_DIR=str(self.data_dir),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY=str(web_workers),
            PYTHONUNBUFFERED="1",
        )
        self.env.update(extra_env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def processing_queue(self) -> Path:
        return self.data_dir / "queue" / "processing.jsonl"

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Deployment":
        try:
            self._create_database()
            _run([str(SERVE), "prepare"], env=self.env)
            self.manage("create_tenant", TENANT_ID, "--name", "Load test")
            for _ in range(self.key_count):
                self.api_keys.append(self.manage("create_api_key", TENANT_ID).strip().splitlines()[-1])
            self.start("web")
            for n in range(1, self.celery_workers + 1):
                self.start(f"worker{n}")
            self.start("beat")
            self._wait_ready()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in list(self.processes):
            self.stop(name)
        if exc_type is not None or self.keep:
            print(f"logs kept in {self.log_dir}", file=sys.stderr)
            return
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(self.tmp_dir)], check=False)

    def manage(self, *args: str) -> str:
        return _run([str(BIN / "python"), str(ROOT / "manage.py"), *args], env=self.env)

    def _create_database(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{self.database}"')

    # --- processes -------------------------------------------------------------------------
    def start(self, name: str) -> None:
        """`deploy/serve.sh web|worker|beat`, in its own process group (serve.sh execs, so the
        group is gunicorn or Celery with its children)."""
        self.starts[name] = self.starts.get(name, 0) + 1
        role = name.rstrip("0123456789")
        log = self.log_dir / f"{name}-{self.starts[name]}.log"
        with open(log, "wb") as out:
            self.processes[name] = subprocess.Popen(
                [str(SERVE), role], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        if role == "worker":
            self._wait_log(log, b" ready.", name)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        if process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self, name: str) -> None:
        """SIGKILL to the worker and its pool children, as the OOM killer or a lost host does."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def exited(self) -> list[str]:
        return [f"{name} (status {p.returncode})" for name, p in self.processes.items() if p.poll() is not None]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def _wait_log(self, log: Path, marker: bytes, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while marker not in log.read_bytes():
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise LoadTestError(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if exited := self.exited():
                raise LoadTestError(f"exited at start: {', '.join(exited)}")
            try:
                if requests.get(self.base_url + self.ready_path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise LoadTestError(f"gunicorn did not answer {self.ready_path} with 200 within 60 s")

    # --- the database ----------------------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as db:
            return db.execute(sql, params).fetchall()

    def deadlocks(self) -> int:
        """PostgreSQL's own count of deadlocks it detected (and broke) in this database."""
        with psycopg.connect(self.admin_url) as admin:
            row = admin.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (self.database,)
            ).fetchone()
        return int(row[0]) if row else 0

    # --- faults ----------------------------------------------------------------------------
    @staticmethod
    def restart_redis(down_seconds: float) -> float:
        """`redis-cli shutdown nosave`, a few seconds down, then the machine's own start command;
        returns how long Redis did not answer."""
        began = time.monotonic()
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], check=False,
                       capture_output=True)  # fmt: skip
        time.sleep(down_seconds)
        subprocess.run(REDIS_START, check=True, capture_output=True)
        for _ in range(100):
            ping = subprocess.run(
                ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return time.monotonic() - began
            time.sleep(0.1)
        raise LoadTestError("Redis did not come back")


def _run(command: list[str], *, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LoadTestError(f"{' '.join(command[-3:])} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _database_url(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
