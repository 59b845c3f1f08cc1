"""What both benchmarks share: a throwaway portal under gunicorn, a tenant with an API key, a
small keep-alive HTTP client, and the server's memory as /proc reports it.

The portal runs in its embedded mode (SQLite, local storage, local queue) in a temporary data
directory that is removed on exit, whatever happens; a bench that needs another backend (S3 on a
moto server) passes the variables that select it as `Portal(env=...)`."""

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TENANT_ID = "tenant_bench"
# Variables that would move the portal off its embedded mode (PostgreSQL, S3, SQS, DynamoDB).
_NOT_EMBEDDED = ("DATABASE_URL", "S3_RAW_MEDIA_BUCKET", "SQS_QUEUE_URL", "DYNAMODB_CATALOG_TABLE")


class BenchError(RuntimeError):
    pass


class Portal:
    """`with Portal(workers=2, threads=4) as portal:` migrates a fresh data dir, creates a tenant
    and an API key, serves the portal with gunicorn on a free 127.0.0.1 port, and tears it all
    down on exit.

    `env` is applied last, over the embedded defaults, to the migrations, the management commands
    and the server alike: the inherited environment never moves the portal off its embedded mode
    (a stray DATABASE_URL or S3_RAW_MEDIA_BUCKET would), only what the bench asks for does."""

    def __init__(self, *, workers: int, threads: int, timeout: int = 120, env: Mapping[str, str] | None = None) -> None:
        self.workers = workers
        self.threads = threads
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="portal-bench-")
        self.tmp_dir = Path(self._tmp.name)
        self.data_dir = self.tmp_dir / "data"
        self.data_dir.mkdir()  # the settings only create it when they also generate a SECRET_KEY
        self.log_path = self.tmp_dir / "gunicorn.log"
        self.port = 0
        self.api_key = ""
        self._server: subprocess.Popen[bytes] | None = None
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_EMBEDDED}
        self.env.update(
            PORTAL_DATA_DIR=str(self.data_dir),
            DJANGO_SETTINGS_MODULE="bench.settings_bench",
            SECRET_KEY=secrets.token_urlsafe(50),
            DEBUG="0",  # DEBUG keeps every SQL query in memory: it would skew the memory figures
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        self.env.update(env or {})

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Portal":
        try:
            self.manage("migrate", "--no-input")
            self.manage("create_tenant", TENANT_ID, "--name", "Benchmark")
            self.api_key = self.manage("create_api_key", TENANT_ID).strip().splitlines()[-1]
            self._start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._stop()
            if exc_type is not None and self.log_path.exists():
                tail = self.log_path.read_text(errors="replace").splitlines()[-40:]
                print("--- gunicorn log (last lines) ---", *tail, sep="\n", file=sys.stderr)
        finally:
            self._tmp.cleanup()

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _start(self) -> None:
        self.port = _free_port()
        command = [
            str(BIN / "gunicorn"),
            "portal.wsgi",
            f"--bind=127.0.0.1:{self.port}",
            "--worker-class=gthread",
            f"--workers={self.workers}",
            f"--threads={self.threads}",
            f"--timeout={self.timeout}",
            "--graceful-timeout=5",
            "--no-control-socket",
            f"--chdir={ROOT}",
        ]
        # gunicorn's log and the workers' own stderr (Django's log) go to one file, shown on failure.
        with open(self.log_path, "wb") as log:
            self._server = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise BenchError(f"gunicorn exited with status {self._server.returncode}")
            try:
                status, _ = Client(self.base_url, api_key="").request("GET", "/bench/ping")
            except OSError:
                time.sleep(0.1)
                continue
            if status != 401:  # unauthenticated: proves Django answers, not just the socket
                raise BenchError(f"GET /bench/ping without a key answered {status}, expected 401")
            return
        raise BenchError("gunicorn did not answer within 30 s")

    def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None or server.poll() is not None:
            return
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # --- use -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> "Client":
        return Client(self.base_url, api_key=self.api_key)

    def server_pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        if self._server is None:
            return []
        master = self._server.pid
        return [master, *_children(master)]


class Client:
    """One keep-alive connection; not thread-safe, so one per thread."""

    def __init__(self, base_url: str, *, api_key: str, blocksize: int = 1024 * 1024) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname == "127.0.0.1" and parts.port
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300, blocksize=blocksize)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        all_headers = {**self.headers, **(headers or {})}
        try:
            return self._send(method, path, body, all_headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # gunicorn closes keep-alive connections idle for 2 s: reconnect once, unless a
            # streamed body was already partly consumed.
            self.conn.close()
            if hasattr(body, "read"):
                raise
            return self._send(method, path, body, all_headers)

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, data: Any = None, *, expect: int = 200) -> Any:
        body = None if data is None else json.dumps(data).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, raw = self.request(method, path, body, headers)
        if status != expect:
            raise BenchError(f"{method} {path} answered {status}, expected {expect}: {raw[:500]!r}")
        return json.loads(raw)

    def close(self) -> None:
        self.conn.close()


def path_of(url: str) -> str:
    """The path and query of an absolute URL the API signed."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- memory ----------------------------------------------------------------------------------
def memory_kib(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (VmRSS: resident now; VmHWM: peak resident), in KiB;
    0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:  # kernels without CONFIG_PROC_CHILDREN: scan parent ids instead
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def machine_summary() -> str:
    """Cores, CPU, Python, kernel and load: what a reader needs to compare figures."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    uname = os.uname()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}, {uname.sysname} {uname.release}, "
        f"load average before the run {load}"
    )
