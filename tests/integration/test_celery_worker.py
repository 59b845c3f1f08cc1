"""Delivery with a real Celery worker (and its beat) in its own process, a real Redis broker,
the test database (SQLite or PostgreSQL) and SQS on a moto server over HTTP, behind a proxy that
fails the way networks do. Each processing message must arrive exactly once in effect: counted
at the queue by deduplication id."""

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import boto3
import pytest
from django.db import connection
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.conftest import REGION, client_for
from tests.helpers import complete_body, uploaded_submission
from tests.integration.live import FaultyProxy, Worker, receive_all, wait_for, worker_env
from uploads.models import OutboxMessage, Submission

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sqs() -> Iterator[tuple[Any, FaultyProxy]]:
    """A moto SQS server, and the proxy the worker reaches it through."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FaultyProxy((host, port))
    client = boto3.client("sqs", region_name=REGION, endpoint_url=f"http://{host}:{port}")
    yield client, proxy
    proxy.close()
    server.stop()


@pytest.fixture
def queue_url(sqs: tuple[Any, FaultyProxy], settings: Any) -> str:
    client, _ = sqs
    name = f"processing-{uuid4().hex[:8]}"
    url: str = client.create_queue(QueueName=name)["QueueUrl"]
    # The worker reaches SQS at AWS_ENDPOINT_URL, the proxy: botocore sends to the endpoint, and
    # the queue URL only names the queue.
    settings.SQS_QUEUE_URL = url
    return url


@pytest.fixture
def worker(broker: tuple[str, str], sqs: tuple[Any, FaultyProxy], queue_url: str, tmp_path: Path) -> Iterator[Worker]:
    _, proxy = sqs
    env = worker_env(data_dir=tmp_path / "worker-data", broker=broker, aws_endpoint=proxy.url, SQS_QUEUE_URL=queue_url)
    live = Worker(workdir=tmp_path, env=env)
    live.start()
    yield live
    live.stop()


def dedup_id(body: dict[str, Any]) -> str:
    """The contract's deduplication id, recomputed from what arrived (standard queues carry none)."""
    return hashlib.sha256(f"{body['trackingId']}|{body['tenantId']}|{body['artisanId']}".encode()).hexdigest()


def all_processing_sent() -> bool:
    return not OutboxMessage.objects.filter(topic="processing").exclude(status="sent").exists()


def test_sqs_outage_during_200_completes_loses_nothing_and_duplicates_nothing(
    api: APIClient, sqs: tuple[Any, FaultyProxy], queue_url: str, worker: Worker
) -> None:
    client, proxy = sqs
    bodies = [complete_body(uploaded_submission(api)) for _ in range(200)]

    proxy.down()
    statuses = [api.post("/v1/catalog/upload/complete", body).status_code for body in bodies]
    assert statuses == [202] * 200
    wait_for(
        lambda: OutboxMessage.objects.filter(topic="processing", attempts__gte=2).count() >= 10,
        timeout=60,
        what="the worker to fail and retry sends during the outage",
    )
    assert not OutboxMessage.objects.filter(topic="processing", status__in=["sent", "failed"]).exists()
    assert receive_all(client, queue_url) == []

    proxy.up()
    wait_for(all_processing_sent, timeout=120, what=f"delivery after recovery\n{worker.log()[-3000:]}")
    received = Counter(dedup_id(json.loads(m["Body"])) for m in receive_all(client, queue_url))
    expected = {row.deduplication_id for row in OutboxMessage.objects.filter(topic="processing")}
    assert set(received) == expected
    assert len(expected) == 200
    assert set(received.values()) == {1}
    wait_for(
        lambda: Submission.objects.filter(stage="queued").count() == 200, timeout=30, what="all submissions queued"
    )


@pytest.mark.parametrize(
    ("held", "deliveries"),
    [("requests", {1}), ("responses", {2})],
    ids=["killed-before-sqs-got-it", "killed-after-sqs-took-it"],
)
def test_worker_killed_mid_send_still_delivers_with_at_most_one_duplicate_of_the_same_id(
    api: APIClient, sqs: tuple[Any, FaultyProxy], queue_url: str, worker: Worker, held: str, deliveries: set[int]
) -> None:
    client, proxy = sqs
    body = complete_body(uploaded_submission(api))
    proxy.hold(held)
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    assert proxy.held.wait(30), worker.log()[-3000:]
    row = OutboxMessage.objects.get(topic="processing")
    assert row.status == "sending"

    worker.kill()
    proxy.release()
    worker.start()
    wait_for(all_processing_sent, timeout=60, what=f"delivery after the restart\n{worker.log()[-3000:]}")

    received = [json.loads(m["Body"]) for m in receive_all(client, queue_url)]
    assert {len(received)} == deliveries
    assert {dedup_id(m) for m in received} == {row.deduplication_id}
    assert OutboxMessage.objects.get(pk=row.pk).attempts == 2


def test_twenty_concurrent_completes_reach_the_queue_as_one_message(
    tenant: Tenant, sqs: tuple[Any, FaultyProxy], queue_url: str, worker: Worker
) -> None:
    client, _ = sqs
    body = complete_body(uploaded_submission(client_for(tenant)))
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    clients = [client_for(tenant) for _ in range(20)]

    def complete(api: APIClient) -> None:
        barrier.wait()
        statuses.append(api.post("/v1/catalog/upload/complete", body).status_code)
        connection.close()

    threads = [threading.Thread(target=complete, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [202] * 20
    wait_for(all_processing_sent, timeout=30, what="delivery")
    assert OutboxMessage.objects.filter(topic="processing").count() == 1
    received = receive_all(client, queue_url)
    assert [json.loads(m["Body"])["trackingId"] for m in received] == [body["trackingId"]]


def test_every_stage_change_is_announced_by_the_worker(
    api: APIClient, sqs: tuple[Any, FaultyProxy], queue_url: str, worker: Worker
) -> None:
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    wait_for(
        lambda: (
            not OutboxMessage.objects.exclude(status="sent").exists() and Submission.objects.get().stage == "queued"
        ),
        timeout=30,
        what="status updates",
    )
    stages = [m.body["stage"] for m in OutboxMessage.objects.filter(topic="status").order_by("created_at")]
    assert stages == ["uploading", "uploaded", "queued"]
    versions = [m.body["version"] for m in OutboxMessage.objects.filter(topic="status").order_by("created_at")]
    assert versions == sorted(set(versions))
