"""What every log record knows about the work it belongs to: the request (or task) id, the
tenant, the submission and the file. A request or a task opens a context; views and services
add to it with `log_context`; a logging filter copies it onto each record, so a warning deep in
a service carries the same ids as the request line that ends it.

Two formats of the same records: JSON lines for machines (production), and a readable line for
a developer's terminal (`make run`); settings.LOG_FORMAT chooses."""

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
# Accepted from a caller as is: a load balancer's or a client's own id, bounded and plain, so it
# can go into a header, a log line and a queue message attribute unescaped.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_context: ContextVar[dict[str, Any] | None] = ContextVar("portal_log_context", default=None)


def is_request_id(value: object) -> bool:
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def request_id_from(value: str | None) -> str:
    """The caller's id when it is well formed, else a fresh one: an id is never refused, but a
    malformed one (too long, odd bytes) is never echoed into logs, headers or messages."""
    if value and is_request_id(value):
        return value
    return uuid.uuid4().hex


@contextmanager
def log_scope(**fields: Any) -> Iterator[dict[str, Any]]:
    """A fresh context for one request or task, dropped when it ends (a worker thread or process
    serves many: nothing leaks from one to the next)."""
    token = _context.set({key: value for key, value in fields.items() if value is not None})
    try:
        yield _context.get() or {}
    finally:
        _context.reset(token)


def log_context(**fields: Any) -> None:
    """Adds fields (tenant, trackingId, mediaId ...) to the current request's or task's context;
    outside one it does nothing. None values are ignored, so callers need not check."""
    current = _context.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})


def current_context() -> dict[str, Any]:
    """A copy of the current context, with the tenant of an authenticated request resolved."""
    current = _context.get()
    if not current:
        return {}
    fields = {key: value for key, value in current.items() if not key.startswith("_")}
    if "tenant" not in fields and "_request" in current:
        tenant = _tenant_of(current["_request"])
        if tenant:
            fields["tenant"] = tenant
    return fields


def current_request_id() -> str | None:
    current = _context.get()
    return current.get("request_id") if current else None


def _tenant_of(request: Any) -> str | None:
    """The tenant DRF's authentication found (an API key, or an upload session's grant: both put
    on the Django request as `auth`). Read from the request's own attributes, never through the
    lazy `request.user`, so logging never runs a query."""
    auth = request.__dict__.get("auth")
    tenant_id = getattr(auth, "tenant_id", None)
    if tenant_id is None:
        tenant_id = getattr(getattr(auth, "tenant", None), "pk", None)
    return str(tenant_id) if tenant_id is not None else None


class ContextFilter(logging.Filter):
    """Copies the current context onto every record (as `record.context`), whatever its logger,
    and puts the route in place of the path in Django's own request records ("Forbidden:
    /storage/get/<token>"): paths of upload links and storage URLs carry tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context"):
            record.context = current_context()
        request = record.__dict__.get("request")
        if request is not None and isinstance(record.args, tuple):
            path = getattr(request, "path", None)
            record.args = tuple(route_of(request) if arg == path else arg for arg in record.args)
        return True


def route_of(request: Any) -> str:
    """The URL pattern a request matched ("/storage/get/<str:token>"), never its path."""
    match = getattr(request, "resolver_match", None)
    return "/" + match.route if match is not None and match.route else "(unmatched)"


# A record's own attributes; anything else on it came from `extra=` and is logged as a field,
# except Django's `request` (its repr holds the query string: signed URLs' signatures).
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",
    "request",
}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context's fields, the
    record's `extra` fields and, for an exception, its traceback as one string. A value JSON
    cannot hold is written as its str(): a log line is never lost to a formatting error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "context", None) or {})
        line.update(_extra(record))
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a developer's terminal: `time LEVEL logger [request id] message key=value ...`, with
    no field the message already says (a request line's method, path and status)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        context = dict(getattr(record, "context", None) or {})
        request_id = context.pop("request_id", None)
        fields = {**context, **_extra(record)}
        head = f"{record.asctime} {record.levelname} {record.name}"
        if request_id:
            head += f" [{request_id}]"
        message = record.getMessage()
        words = set(message.split())
        tail = "".join(f" {key}={value}" for key, value in fields.items() if str(value) not in words)
        return f"{head} {message}{tail}"


class Stopwatch:
    """Milliseconds since it started, rounded for a log line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)
