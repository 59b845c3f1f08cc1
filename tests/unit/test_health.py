"""/healthz says the process answers and touches nothing; /readyz checks every dependency a
request needs, at once and under one deadline, and names the one that fails."""

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.test import Client
from moto import mock_aws

from portal import health
from tests.conftest import REGION, Mirror
from tests.integration.live import publishing_to, require_service

pytestmark = pytest.mark.django_db
CHECKS = {"database", "storage", "broker", "queue_processing", "queue_status"}


def probe(path: str, **headers: Any) -> Any:
    return Client().get(path, **headers)


def failed(response: Any) -> set[str]:
    return {name for name, result in response.json()["checks"].items() if not result["ok"]}


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_healthz_answers_ok_without_a_query_whatever_the_host(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = probe("/healthz", HTTP_HOST="10.0.0.7:8000")  # a load balancer's probe: not in ALLOWED_HOSTS
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert response["X-Request-ID"]
    assert not response.cookies  # no session, no CSRF cookie


def test_readyz_reports_each_check_with_its_latency() -> None:
    response = probe("/readyz", HTTP_HOST="10.0.0.7")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    for result in body["checks"].values():
        assert result["ok"] is True
        assert isinstance(result["ms"], float) and result["ms"] >= 0


def test_probes_take_only_get_and_head() -> None:
    assert Client().head("/readyz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def test_unwritable_storage_root_fails_readiness(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the storage root should be")
    settings.UPLOADS_LOCAL_ROOT = tmp_path / "blocker" / "objects"
    response = probe("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert failed(response) == {"storage"}


def test_unwritable_queue_directory_fails_both_queue_checks(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the queue directory should be")
    settings.UPLOADS_LOCAL_QUEUE_DIR = tmp_path / "blocker" / "queue"
    response = probe("/readyz")
    assert response.status_code == 503
    assert failed(response) == {"queue_processing", "queue_status"}


def test_a_refused_broker_fails_readiness_and_the_answer_names_no_host(closed_port: int) -> None:
    with publishing_to(f"redis://127.0.0.1:{closed_port}/0"):
        response = probe("/readyz")
    assert response.status_code == 503
    assert failed(response) == {"broker"}
    broker = response.json()["checks"]["broker"]
    assert broker["error"] == "OperationalError"  # the kind only: the public probe names no host or port
    assert str(closed_port) not in response.content.decode()


def test_a_hung_broker_fails_readiness_within_the_deadline(silent_port: int, settings: Any) -> None:
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    with publishing_to(f"redis://127.0.0.1:{silent_port}/0"):
        response = probe("/readyz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert failed(response) == {"broker"}
    assert response.json()["checks"]["broker"]["error"] == "timeout"


def test_the_redis_broker_answering_passes() -> None:
    with socket.socket() as redis:
        redis.settimeout(1)
        require_service(redis.connect_ex(("127.0.0.1", 6379)) == 0, "Redis is not running on 127.0.0.1:6379")
    with publishing_to("redis://127.0.0.1:6379/0", queue=f"portal-test-{uuid.uuid4().hex[:12]}"):
        response = probe("/readyz")
    assert response.status_code == 200, response.content


@mock_aws
def test_sqs_queues_are_checked_and_a_missing_one_fails(settings: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    settings.SQS_QUEUE_URL = sqs.create_queue(QueueName="processing-ready")["QueueUrl"]
    settings.SQS_STATUS_QUEUE_URL = settings.SQS_QUEUE_URL.replace("processing-ready", "status-never-created")
    response = probe("/readyz")
    assert response.status_code == 503
    assert failed(response) == {"queue_status"}


def test_s3_storage_is_checked_with_head_bucket(s3: Any, settings: Any) -> None:
    assert probe("/readyz").status_code == 200
    settings.S3_RAW_MEDIA_BUCKET = "no-such-bucket"
    response = probe("/readyz")
    assert response.status_code == 503
    assert failed(response) == {"storage"}


def test_dynamodb_tables_are_checked_only_when_the_mirror_is_on(mirror: Mirror, settings: Any) -> None:
    response = probe("/readyz")
    assert response.status_code == 200, response.content
    assert set(response.json()["checks"]) == CHECKS | {"dynamodb"}
    settings.DYNAMODB_UPLOAD_STATE_TABLE = "NotCreated"
    response = probe("/readyz")
    assert response.status_code == 503
    assert failed(response) == {"dynamodb"}


def test_a_failing_database_fails_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    class Down(Exception):
        pass

    def refuse() -> None:
        raise Down("could not connect to server")

    monkeypatch.setattr(health, "check_database", refuse)
    response = probe("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "ms": pytest.approx(0, abs=50), "error": "Down"}
