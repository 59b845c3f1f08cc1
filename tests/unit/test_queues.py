"""Both publishers deliver the same message; SQS gets FIFO ids only on FIFO queues."""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from uploads.queue import LocalQueue, PublishError, QueueMessage, SqsQueue

MESSAGE = QueueMessage(
    body={"trackingId": "trk_1", "tenantId": "tenant_a"},
    attributes={"tenantId": "tenant_a", "language": "hi", "priority": "normal"},
    group_id="tenant_a",
    deduplication_id="d" * 64,
)


def test_local_queue_appends_one_json_line_per_message(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q" / "processing.jsonl")
    queue.publish(MESSAGE)
    queue.publish(MESSAGE)
    lines = (tmp_path / "q" / "processing.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert [m["body"] for m in queue.messages()] == [MESSAGE.body, MESSAGE.body]
    assert json.loads(lines[0])["deduplicationId"] == "d" * 64


def test_local_queue_failure_is_a_publish_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the directory should be")
    with pytest.raises(PublishError):
        LocalQueue(tmp_path / "blocker" / "processing.jsonl").publish(MESSAGE)


def receive_all(client: Any, url: str) -> list[Any]:
    return client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])


@mock_aws
def test_fifo_queue_gets_group_and_deduplication_ids() -> None:
    client = boto3.client("sqs", region_name="ap-south-1")
    url = client.create_queue(QueueName="processing.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = SqsQueue(queue_url=url, region="ap-south-1")
    queue.publish(MESSAGE)
    queue.publish(MESSAGE)  # same deduplication id: SQS drops it
    [received] = receive_all(client, url)
    assert json.loads(received["Body"]) == MESSAGE.body
    assert received["Attributes"]["MessageGroupId"] == "tenant_a"
    assert received["Attributes"]["MessageDeduplicationId"] == "d" * 64
    assert {k: v["StringValue"] for k, v in received["MessageAttributes"].items()} == MESSAGE.attributes


@mock_aws
def test_standard_queue_gets_no_fifo_parameters() -> None:
    client = boto3.client("sqs", region_name="ap-south-1")
    url = client.create_queue(QueueName="processing")["QueueUrl"]
    SqsQueue(queue_url=url, region="ap-south-1").publish(MESSAGE)
    [received] = receive_all(client, url)
    assert "MessageGroupId" not in received["Attributes"]


@mock_aws
def test_sqs_error_is_a_publish_error() -> None:
    queue = SqsQueue(queue_url="https://sqs.ap-south-1.amazonaws.com/123456789012/missing", region="ap-south-1")
    with pytest.raises(PublishError):
        queue.publish(MESSAGE)
