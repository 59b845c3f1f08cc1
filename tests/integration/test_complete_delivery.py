"""Completing a submission hands exactly one processing message to the queue, whatever the
concurrency, and an unavailable queue delays the message without failing the client."""

import json
import threading
from typing import Any

import boto3
import pytest
from django.db import connection
from django.utils import timezone
from moto import mock_aws
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create
from tests.helpers import complete_body, uploaded_submission
from uploads.models import Event, OutboxMessage, Submission
from uploads.queue import LocalQueue, get_publisher
from uploads.services import outbox_deliver


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_completes_produce_one_outbox_row_and_one_message(tenant: Tenant) -> None:
    _, raw = api_key_create(tenant=tenant)

    def client() -> APIClient:
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return c

    body = complete_body(uploaded_submission(client()), language="bn")
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def complete() -> None:
        c = client()
        barrier.wait()
        statuses.append(c.post("/v1/catalog/upload/complete", body).status_code)
        connection.close()

    threads = [threading.Thread(target=complete) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [202] * 20
    assert OutboxMessage.objects.filter(topic="processing").count() == 1
    assert OutboxMessage.objects.filter(topic="status", body__stage="uploaded").count() == 1
    assert Event.objects.filter(action="submission.completed").count() == 1
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    messages = list(queue.messages())
    assert [m["body"]["trackingId"] for m in messages] == [body["trackingId"]]
    assert Submission.objects.get(tracking_id=body["trackingId"]).stage == "queued"


@mock_aws
def test_processing_message_goes_to_the_configured_fifo_queue(
    api: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sqs = boto3.client("sqs", region_name="ap-south-1")
    url = sqs.create_queue(QueueName="catalog-processing.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings.SQS_QUEUE_URL = url
    body = complete_body(uploaded_submission(api), language="bn")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    sent = json.loads(message["Body"])
    assert sent["trackingId"] == body["trackingId"]
    assert sent["photoKey"].startswith("file:///")
    assert message["Attributes"]["MessageGroupId"] == "tenant_a"
    expected = OutboxMessage.objects.get(topic="processing").deduplication_id
    assert message["Attributes"]["MessageDeduplicationId"] == expected


@mock_aws
def test_unavailable_queue_still_accepts_the_completion_and_keeps_the_message(
    api: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sqs = boto3.client("sqs", region_name="ap-south-1")
    settings.SQS_QUEUE_URL = "https://sqs.ap-south-1.amazonaws.com/123456789012/not-created-yet.fifo"
    body = complete_body(uploaded_submission(api), language="bn")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/v1/catalog/upload/complete", body)
    assert response.status_code == 202
    row = OutboxMessage.objects.get(topic="processing")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error
    assert row.next_attempt_at > timezone.now()  # backing off
    assert Submission.objects.get().stage == "uploaded"

    # The queue comes back: once the row is due again, it is delivered, once.
    settings.SQS_QUEUE_URL = sqs.create_queue(QueueName="not-created-yet.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    assert outbox_deliver(message_id=row.pk) is None  # not due yet: nothing sent
    OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert outbox_deliver(message_id=row.pk) is None
    assert OutboxMessage.objects.get(pk=row.pk).status == "sent"
    assert outbox_deliver(message_id=row.pk) is None
    messages = sqs.receive_message(QueueUrl=settings.SQS_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    assert Submission.objects.get().stage == "queued"
