"""Tracing (OpenTelemetry, recorded in memory): one trace runs from the request that completes an
upload, through the outbox row it wrote, to the SQS call that sends the processing message,
although the send happens later, in the relay. Off, nothing is recorded and rows carry nothing."""

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client, override_settings
from moto import mock_aws
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rest_framework.test import APIClient

from portal import tracing
from portal.observability import ContextFilter
from portal.tracing import continued_span, get_tracer, trace_carrier
from tests.conftest import REGION
from tests.helpers import complete_body, uploaded_submission
from uploads.models import OutboxMessage
from uploads.services import outbox_relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every instrumentation on, recording into memory, for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    try:
        yield exporter
    finally:
        tracing.uninstrument()
        provider.shutdown()


@pytest.fixture
def sqs_queue(settings: Any) -> Iterator[str]:
    with mock_aws():
        url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="processing-traced")["QueueUrl"]
        settings.SQS_QUEUE_URL = url
        yield url


def ancestry(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[int]:
    """The span ids from `span` up to its trace's root (as far as recorded spans go)."""
    chain = [span.context.span_id]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.context.span_id)
    return chain


def test_one_trace_runs_from_complete_to_the_sqs_send(
    spans: InMemorySpanExporter, sqs_queue: str, api: APIClient
) -> None:
    submission = uploaded_submission(api)
    spans.clear()
    response = api.post("/v1/catalog/upload/complete", complete_body(submission))
    assert response.status_code in (200, 202), response.content  # accepted
    [request] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.attributes is not None and request.attributes["http.status_code"] == response.status_code
    row = OutboxMessage.objects.get(topic="processing")
    assert row.trace_context["traceparent"].split("-")[1] == format(request.context.trace_id, "032x")

    assert outbox_relay() >= 1  # later, as the periodic relay would: no request, no span active

    finished = spans.get_finished_spans()
    [send] = [s for s in finished if s.name == "SQS.SendMessageBatch"]
    assert send.context.trace_id == request.context.trace_id
    by_id = {s.context.span_id: s for s in finished}
    chain = ancestry(send, by_id)
    assert chain[-1] == request.context.span_id  # the SQS call descends from the complete request
    outbox_span = by_id[chain[1]]
    assert outbox_span.name == "outbox send processing"
    assert outbox_span.attributes is not None and outbox_span.attributes["outbox.message_ids"] == (row.pk,)

    sqs = boto3.client("sqs", region_name=REGION)
    [message] = sqs.receive_message(QueueUrl=sqs_queue, MessageAttributeNames=["All"])["Messages"]
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["requestId"] == response["X-Request-ID"]


def test_database_queries_are_spans_of_the_request(spans: InMemorySpanExporter, api: APIClient) -> None:
    fresh = connections.create_connection("default")  # connections opened once tracing is on
    try:
        with get_tracer("test").start_as_current_span("parent"), fresh.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        fresh.close()
    [parent] = [s for s in spans.get_finished_spans() if s.name == "parent"]
    queries = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT and s.name.startswith("SELECT")]
    assert queries and all(q.parent is not None and q.parent.span_id == parent.context.span_id for q in queries)


def test_a_batch_of_rows_from_several_traces_links_each(spans: InMemorySpanExporter) -> None:
    tracer = get_tracer("test")
    carriers = []
    for name in ("first request", "second request"):
        with tracer.start_as_current_span(name):
            carriers.append(trace_carrier())
    with tracer.start_as_current_span("relay task"), continued_span("outbox send status", carriers):
        pass
    by_name = {s.name: s for s in spans.get_finished_spans()}
    send = by_name["outbox send status"]
    assert send.parent is not None and send.parent.span_id == by_name["relay task"].context.span_id
    assert {link.context.span_id for link in send.links} == {
        by_name["first request"].context.span_id,
        by_name["second request"].context.span_id,
    }


def test_a_row_sent_by_a_task_joins_its_writer_trace_and_links_the_task(spans: InMemorySpanExporter) -> None:
    tracer = get_tracer("test")
    with tracer.start_as_current_span("request"):
        carrier = trace_carrier()
    with tracer.start_as_current_span("deliver task"), continued_span("outbox send processing", [carrier]):
        pass
    by_name = {s.name: s for s in spans.get_finished_spans()}
    send = by_name["outbox send processing"]
    assert send.context.trace_id == by_name["request"].context.trace_id
    assert send.parent is not None and send.parent.span_id == by_name["request"].context.span_id
    assert [link.context.span_id for link in send.links] == [by_name["deliver task"].context.span_id]


@pytest.mark.once
def test_tracing_stays_off_without_an_endpoint() -> None:
    with override_settings(OTEL_ENABLED=False):
        assert tracing.tracing_setup("portal-test") is False
    assert trace_carrier() == {}


def test_untraced_rows_carry_no_context(api: APIClient) -> None:
    response = api.post("/v1/catalog/upload/complete", complete_body(uploaded_submission(api)))
    assert response.status_code in (200, 202)
    assert {row.trace_context.get("traceparent") for row in OutboxMessage.objects.all()} == {None}


def test_probes_are_answered_whatever_the_host_and_leave_no_span(spans: InMemorySpanExporter) -> None:
    client = Client()
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200  # Django's tracing reads Host
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert spans.get_finished_spans() == ()  # nor the readiness checks' queries and calls


def test_the_request_line_names_the_trace(spans: InMemorySpanExporter, api: APIClient) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(ContextFilter())
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logging.getLogger("portal.request").addHandler(handler)
    try:
        api.get("/v1/catalog/uploads/med_000000000000000000000000")
    finally:
        logging.getLogger("portal.request").removeHandler(handler)
    [request] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    [line] = records
    assert line.context["trace_id"] == format(request.context.trace_id, "032x")  # type: ignore[attr-defined]


def test_instrumenting_under_a_settings_override_leaves_no_middleware_behind() -> None:
    # The tests' settings override (conftest's autouse fixtures use `settings`), over the real ones.
    overridden = getattr(django_settings, "_wrapped")  # noqa: B009 - private: mypy's stubs lack it
    tracing.instrument(TracerProvider())
    tracing.uninstrument()
    for middleware in (django_settings.MIDDLEWARE, overridden.default_settings.MIDDLEWARE):
        assert not [name for name in middleware if "opentelemetry" in name]
