"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app's
tasks.py, periodic jobs declared once in settings.CELERY_BEAT_SCHEDULE.

Each task runs in a log context of its own (portal/observability.py) that carries the id of the
request that published it, and ends with one "portal.task" line; each worker process sets up
tracing when it starts (portal/tracing.py, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set)."""

import logging
import os
from contextlib import AbstractContextManager
from typing import Any

from celery import Celery, Task
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init, worker_process_init

from portal.observability import Stopwatch, current_request_id, is_request_id, log_scope

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

task_logger = logging.getLogger("portal.task")
# The message header that carries the publishing request's id to the task.
REQUEST_ID_HEADER = "portal_request_id"
_running: dict[str, tuple[Stopwatch, AbstractContextManager[Any]]] = {}


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _task_started(task_id: str, task: Task, **_: Any) -> None:
    """The publisher's request id, else the caller's (a task run in-process), else the task's
    own id: a periodic task's lines still share one id."""
    carried = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(REQUEST_ID_HEADER)
    request_id = carried if is_request_id(carried) else current_request_id() or task_id
    scope = log_scope(request_id=request_id, task=task.name, task_id=task_id)
    scope.__enter__()
    _running[task_id] = (Stopwatch(), scope)


@task_postrun.connect
def _task_finished(task_id: str, task: Task, state: str | None = None, **_: Any) -> None:
    started = _running.pop(task_id, None)
    if started is None:
        return
    watch, scope = started
    try:
        task_logger.info(
            "%s %s",
            task.name,
            state,
            extra={"status": state, "duration_ms": watch.ms()},
        )
    finally:
        scope.__exit__(None, None, None)


@worker_process_init.connect
def _trace_pool_process(**_: Any) -> None:
    """Each prefork child after the fork: an exporter's thread does not survive one."""
    from portal.tracing import tracing_setup

    tracing_setup("portal-worker")


@worker_init.connect
def _trace_worker(sender: Any = None, **_: Any) -> None:
    """Solo and thread pools run tasks in the main process, which no worker_process_init reaches."""
    pool = getattr(sender, "pool_cls", None)
    if "prefork" not in str(getattr(pool, "__module__", pool)):
        from portal.tracing import tracing_setup

        tracing_setup("portal-worker")
