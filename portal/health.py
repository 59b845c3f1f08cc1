"""Liveness and readiness, for load balancers and orchestrators.

Liveness says the process answers, and touches nothing else: a database outage must not get
every web process restarted. Readiness checks what a request needs (the database, storage, the
Celery broker, the queues, the DynamoDB mirror when it is on), all at once in worker threads
under one deadline, so a dependency that hangs makes the probe fail in READYZ_TIMEOUT_SECONDS
instead of holding it (and a web thread) for as long as the hang lasts."""

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import connections

from portal.tracing import untraced

logger = logging.getLogger(__name__)

PROBE_PATHS = {"/healthz": "live", "/readyz": "ready"}
Check = Callable[[], None]


def liveness() -> dict[str, str]:
    return {"status": "ok"}


def readiness(timeout: float | None = None) -> dict[str, Any]:
    """Each check's result and latency; status "fail" when any failed or did not answer in time.
    A failure's cause is logged, and only its kind is answered: the probe is public, and error
    messages name hosts and ports."""
    deadline = settings.READYZ_TIMEOUT_SECONDS if timeout is None else timeout
    checks = readiness_checks()
    started = {name: time.perf_counter() for name in checks}
    futures: dict[str, Future[float]] = {name: _executor().submit(_timed, check) for name, check in checks.items()}
    wait(futures.values(), timeout=deadline)
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        if not future.done():
            future.cancel()
            elapsed = round((time.perf_counter() - started[name]) * 1000, 1)
            results[name] = {"ok": False, "ms": elapsed, "error": "timeout"}
            logger.warning("readiness check %s did not answer within %ss", name, deadline)
            continue
        error = future.exception()
        if error is None:
            results[name] = {"ok": True, "ms": future.result()}
        else:
            results[name] = {"ok": False, "ms": getattr(error, "ms", None), "error": type(error).__name__}
            logger.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
    status = "ok" if all(result["ok"] for result in results.values()) else "fail"
    return {"status": status, "checks": results}


def readiness_checks() -> dict[str, Check]:
    from uploads.dynamodb import mirror_tables

    checks: dict[str, Check] = {
        "database": check_database,
        "storage": check_storage,
        "broker": check_broker,
        "queue_processing": lambda: _check_queue("processing"),
        "queue_status": lambda: _check_queue("status"),
    }
    if mirror_tables() is not None:
        checks["dynamodb"] = check_dynamodb
    return checks


def check_database() -> None:
    """A round trip on a connection of the checking thread's own, closed after: the check must
    neither borrow a request's connection nor leave one open per probe thread."""
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


def check_storage() -> None:
    from uploads.storage import get_storage

    get_storage().ping()


def _check_queue(topic: str) -> None:
    from uploads.queue import get_publisher

    get_publisher(topic).ping()


def check_broker() -> None:
    """The Celery broker the web process publishes to: Redis answers a PING; the embedded
    filesystem broker's directory must take a file."""
    from portal.celery import app

    url = str(app.conf.broker_url or "")
    if url.startswith("filesystem://"):
        folder = app.conf.broker_transport_options.get("data_folder_in")
        _probe_directory(str(folder))
        return
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)  # once: the deadline bounds a hang
        client = getattr(connection.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()


def check_dynamodb() -> None:
    from uploads.dynamodb import client, mirror_tables

    tables = mirror_tables()
    assert tables is not None
    for table in (tables.catalog, tables.upload_state):
        client().describe_table(TableName=table)


def _probe_directory(path: str) -> None:
    """Creates and removes a file in `path`: a full disk or a read-only mount fails here."""
    probe = os.path.join(path, f".ready-{os.getpid()}-{threading.get_ident()}")
    with open(probe, "w") as file:
        file.write("ok")
    os.unlink(probe)


def _timed(check: Check) -> float:
    started = time.perf_counter()
    try:
        with untraced():
            check()
    except Exception as exc:
        exc.ms = round((time.perf_counter() - started) * 1000, 1)  # type: ignore[attr-defined]
        raise
    return round((time.perf_counter() - started) * 1000, 1)


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One pool per process (made after a fork, never inherited). Bounded: checks stuck on a
    hung dependency hold their threads, and later probes queue behind them and time out (they
    fail, as they should) instead of piling up threads."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=16, thread_name_prefix="readyz"))
        return _pool[1]
