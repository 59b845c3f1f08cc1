"""Distributed tracing with OpenTelemetry, as the original design used X-Ray: spans for Django
requests, Celery tasks, botocore calls (S3, SQS, DynamoDB) and database queries, exported over
OTLP/HTTP. Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: then nothing is instrumented and the
helpers below return at once, so a deployment without a collector pays nothing.

The outbox breaks the call chain (a row written by a request is sent later by another process),
so it carries the trace itself: the context active when a row is written is stored with it (W3C
traceparent), and the send of that row runs in a span whose parent is that context. One trace
then runs from the request that caused a message to the SQS call that sent it."""

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)
_active: list["TracerProvider"] = []  # the provider this process traces with, once set up


def tracing_setup(service_name: str) -> bool:
    """Once per process (the web process in wsgi.py, each worker process when it starts): the
    OTLP exporter and the instrumentations. Returns whether tracing is on."""
    if _active:
        return True
    if not settings.OTEL_ENABLED:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, when set, names the service; OTEL_RESOURCE_ATTRIBUTES adds to it.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    instrument(provider)
    logger.info("tracing on: spans go to %s", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    return True


def instrument(provider: "TracerProvider") -> None:
    """Django, Celery, botocore and database spans, recorded by `provider`. Tests call this with
    an in-memory exporter's provider, and `uninstrument` after."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider)
    _probes_before_tracing()
    CeleryInstrumentor().instrument(tracer_provider=provider)
    BotocoreInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    SQLite3Instrumentor().instrument(tracer_provider=provider)
    _active[:] = [provider]


def _probes_before_tracing() -> None:
    """Django's tracing middleware puts itself first; the portal's own (request ids, probes) go
    back before it. It reads the Host header, which a load balancer's probe (by IP) fails, and
    would start a trace for every probe."""
    middleware = settings.MIDDLEWARE
    ours = [name for name in middleware if name.startswith("portal.middleware.")]
    reordered = [*ours, *(name for name in middleware if name not in ours)]
    if isinstance(middleware, list):
        middleware[:] = reordered  # the very list the instrumentor changed (and will change back)
    else:
        settings.MIDDLEWARE = tuple(reordered)


@contextmanager
def untraced() -> Iterator[None]:
    """No spans inside (the readiness checks: every probe would otherwise leave root spans)."""
    if not _active:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


def uninstrument() -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    for instrumentor in (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        BotocoreInstrumentor(),
        PsycopgInstrumentor(),
        SQLite3Instrumentor(),
    ):
        instrumentor.uninstrument()
    _active.clear()


def get_tracer(name: str) -> trace.Tracer:
    """A tracer of the provider set up here (a no-op one while tracing is off)."""
    return _active[0].get_tracer(name) if _active else trace.get_tracer(name)


def current_trace_id() -> str | None:
    """The active trace's id (32 hex digits), for log lines; None while tracing is off."""
    if not _active:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (traceparent, tracestate), to store with work
    done later; empty when tracing is off or no span is active."""
    if not _active:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_span(name: str, carriers: Sequence[Mapping[str, str]], **attributes: Any) -> Iterator[None]:
    """A span for work done on behalf of the contexts in `carriers` (stored by trace_carrier).
    All of one context: that context is its parent, so the work joins that trace, and the span
    active here (the Celery task running the send) is linked. Several (a batch of rows written
    by different requests): it is a child of the active span and links each of them, as
    OpenTelemetry's messaging conventions do for batches. None: a plain child span."""
    if not _active:
        yield
        return
    origins: dict[tuple[int, int], Context] = {}
    untraced = 0
    for carrier in carriers:
        extracted = propagate.extract(carrier)
        origin = trace.get_current_span(extracted).get_span_context()
        if origin.is_valid:
            origins[(origin.trace_id, origin.span_id)] = extracted
        else:
            untraced += 1
    current = trace.get_current_span().get_span_context()
    parent: Context | None = None
    links: list[Link] = []
    if len(origins) == 1 and not untraced:
        parent = next(iter(origins.values()))
        links = [Link(current)] if current.is_valid else []
    else:
        links = [Link(trace.get_current_span(context).get_span_context()) for context in origins.values()]
    with get_tracer("portal.outbox").start_as_current_span(
        name, context=parent, kind=SpanKind.PRODUCER, links=links, attributes=attributes
    ):
        yield
