"""Every request has an id (the caller's X-Request-ID when well formed), returned on every
response and logged on one JSON line with its route, status, duration and what it concerns;
every other record logged meanwhile carries the same context; the id follows the work into
Celery tasks and outbox messages."""

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path
from rest_framework.test import APIClient

from portal.celery import REQUEST_ID_HEADER, app
from portal.observability import ContextFilter, JsonFormatter, TextFormatter, log_context, log_scope
from tests.helpers import create_upload
from tests.integration.live import publishing_to
from uploads.models import OutboxMessage
from uploads.queue import QueueMessage
from uploads.services.outbox import outbox_enqueue

Lines = Callable[[], list[dict[str, Any]]]


def crash(request: HttpRequest) -> HttpResponse:
    log_context(trackingId="trk_crashing")
    logging.getLogger("uploads.services.test").warning("about to fail")
    raise RuntimeError("the view broke")


# The URLconf of the tests marked urls(__name__): the portal's, and a view that crashes.
urlpatterns = [path("crash", crash), path("", include("portal.urls"))]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """What the portal logs, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def request_lines(lines: Lines) -> list[dict[str, Any]]:
    return [line for line in lines() if line["logger"] == "portal.request"]


@pytest.mark.django_db
def test_each_request_logs_one_line_with_route_status_duration_and_what_it_concerns(
    api: APIClient, lines: Lines
) -> None:
    created = create_upload(api, content_type="image/jpeg", file_size=10)
    response = api.get(f"/v1/catalog/uploads/{created['mediaId']}")
    assert response.status_code == 200
    line = request_lines(lines)[-1]
    assert line["method"] == "GET"
    assert line["path"] == "/v1/catalog/uploads/<media_id:media_id>"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response["X-Request-ID"]
    assert line["tenant"] == "tenant_a"
    assert line["mediaId"] == created["mediaId"]
    assert line["trackingId"] == created["trackingId"]
    assert line["level"] == "INFO" and line["time"].endswith("Z")


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["abc-123", "Root=1-5759e988", "a" * 128, "lb.7:9_x"])
def test_a_well_formed_request_id_is_kept(sent: str, lines: Lines) -> None:
    sent = sent.replace("=", "_")
    response = Client().get("/v1/catalog/status/trk_nothing", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] == sent
    assert request_lines(lines)[-1]["request_id"] == sent


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["", "a" * 129, "two words", "id\u00e9", "x;y", "<script>"])
def test_a_malformed_request_id_is_replaced_by_a_fresh_one(sent: str, lines: Lines) -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    answered = response["X-Request-ID"]
    assert answered != sent and len(answered) == 32 and int(answered, 16) >= 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/v1/catalog/uploads", "/v1/no-such-endpoint", "/admin/login/", "/storage/get/forged", "/", "/readyz"],
)
def test_every_response_carries_a_request_id(url: str) -> None:
    response = Client().get(url)
    assert len(response["X-Request-ID"]) == 32, response.status_code


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_crash_is_logged_with_its_traceback_and_the_request_context(lines: Lines) -> None:
    response = Client(raise_request_exception=False).get("/crash?token=secret-in-query", HTTP_X_REQUEST_ID="req-crash")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "req-crash"
    logged = {line["logger"]: line for line in lines()}
    warning = logged["uploads.services.test"]
    assert (warning["request_id"], warning["trackingId"], warning["level"]) == ("req-crash", "trk_crashing", "WARNING")
    error = logged["django.request"]
    assert error["request_id"] == "req-crash" and error["trackingId"] == "trk_crashing"
    assert "Traceback" in error["exc_info"] and "RuntimeError: the view broke" in error["exc_info"]
    assert logged["portal.request"]["status"] == 500
    assert "secret-in-query" not in json.dumps(lines())  # Django's `request` extra holds the query string


@pytest.mark.django_db
def test_the_path_logged_is_the_route_never_a_token_or_a_query(lines: Lines) -> None:
    Client().get("/storage/get/SECRET-TOKEN?X-Signature=SECRET-SIGNATURE")
    Client().get("/upload/link?t=SECRET-LINK")
    logged = json.dumps(lines())
    assert [line["path"] for line in request_lines(lines)] == ["/storage/get/<str:token>", "/upload/link"]
    assert "SECRET" not in logged


@pytest.mark.django_db
def test_passing_probes_are_not_logged_and_a_failing_one_is(lines: Lines, settings: Any, tmp_path: Path) -> None:
    Client().get("/healthz")
    Client().get("/readyz")
    assert request_lines(lines) == []
    (tmp_path / "blocker").write_text("")
    settings.UPLOADS_LOCAL_ROOT = tmp_path / "blocker" / "objects"
    Client().get("/readyz")
    [line] = request_lines(lines)
    assert (line["path"], line["status"], line["level"]) == ("/readyz", 503, "WARNING")


@pytest.mark.once
def test_the_text_format_reads_as_one_line_with_the_request_id_first() -> None:
    record = logging.LogRecord("portal.request", logging.INFO, __file__, 1, "GET %s %s", ("/x", 200), None)
    record.path, record.status, record.duration_ms = "/x", 200, 1.5
    with log_scope(request_id="req-1", tenant="tenant_a"):
        ContextFilter().filter(record)
    text = TextFormatter().format(record)
    assert text.endswith(" INFO portal.request [req-1] GET /x 200 tenant=tenant_a duration_ms=1.5")


def _probe() -> None:
    logging.getLogger("uploads.tasks").info("inside the task")


probe_task = app.task(name="tests.request_logging.probe")(_probe)


@pytest.mark.once
def test_a_task_published_during_a_request_carries_its_request_id() -> None:
    queue_name = f"request-id-{uuid.uuid4().hex}"  # the in-memory broker is the whole run's: a queue of its own
    with publishing_to("memory://", queue=queue_name):
        with log_scope(request_id="req-published"):
            probe_task.delay()
        with app.connection_for_read() as connection:
            queue = connection.SimpleQueue(queue_name)
            message = queue.get(timeout=2)
            message.ack()
            queue.close()
    assert message.headers[REQUEST_ID_HEADER] == "req-published"


@pytest.mark.once
def test_a_task_runs_and_logs_one_line_under_the_request_id_it_carries(lines: Lines) -> None:
    result = probe_task.apply(headers={REQUEST_ID_HEADER: "req-task"})
    inside = next(line for line in lines() if line["message"] == "inside the task")
    [task] = [line for line in lines() if line["logger"] == "portal.task"]
    assert inside["request_id"] == task["request_id"] == "req-task"
    assert inside["task"] == task["task"] == "tests.request_logging.probe"
    assert task["task_id"] == result.id
    assert task["status"] == "SUCCESS" and isinstance(task["duration_ms"], float)


@pytest.mark.once
def test_a_task_without_a_carried_id_logs_under_its_own_task_id(lines: Lines) -> None:
    result = probe_task.apply(headers={REQUEST_ID_HEADER: "not a valid id"})
    [task] = [line for line in lines() if line["logger"] == "portal.task"]
    assert task["request_id"] == result.id


@pytest.mark.django_db
def test_outbox_messages_carry_the_request_id_when_there_is_room() -> None:
    def enqueue(key: str, **attributes: str) -> OutboxMessage:
        message = QueueMessage(body={"k": key}, attributes=attributes)
        return outbox_enqueue(topic="status", dedup_key=key, message=message, submission=None)

    with log_scope(request_id="req-outbox"):
        assert enqueue("a", stage="queued").attributes == {"stage": "queued", "requestId": "req-outbox"}
        full = {f"a{i}": "v" for i in range(10)}
        assert enqueue("b", **full).attributes == full  # a queue takes 10 attributes: the message is kept whole
    assert enqueue("c", stage="queued").attributes == {"stage": "queued"}  # no request, no id
