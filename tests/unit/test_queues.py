"""Both publishers deliver the same message; SQS gets FIFO ids only on FIFO queues."""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from uploads.queue import LocalQueue, MessageRejected, PublishError, QueueMessage, SendFailure, SqsQueue, batches
from uploads.queue.base import MAX_MESSAGE_BYTES

MESSAGE = QueueMessage(
    body={"trackingId": "trk_1", "tenantId": "tenant_a"},
    attributes={"tenantId": "tenant_a", "language": "hi", "priority": "normal"},
    group_id="tenant_a",
    deduplication_id="d" * 64,
)


def test_local_queue_appends_one_json_line_per_message(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q" / "processing.jsonl")
    assert queue.publish_batch([MESSAGE]) == {}
    assert queue.publish_batch([MESSAGE]) == {}
    lines = (tmp_path / "q" / "processing.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert [m["body"] for m in queue.messages()] == [MESSAGE.body, MESSAGE.body]
    assert json.loads(lines[0])["deduplicationId"] == "d" * 64


def test_local_queue_failure_is_a_publish_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the directory should be")
    with pytest.raises(PublishError):
        LocalQueue(tmp_path / "blocker" / "processing.jsonl").publish_batch([MESSAGE])


def receive_all(client: Any, url: str) -> list[Any]:
    return client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])


@mock_aws
def test_fifo_queue_gets_group_and_deduplication_ids() -> None:
    client = boto3.client("sqs", region_name="ap-south-1")
    url = client.create_queue(QueueName="processing.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = SqsQueue(queue_url=url, region="ap-south-1")
    assert queue.publish_batch([MESSAGE]) == {}
    assert queue.publish_batch([MESSAGE]) == {}  # same deduplication id: SQS drops it
    [received] = receive_all(client, url)
    assert json.loads(received["Body"]) == MESSAGE.body
    assert received["Attributes"]["MessageGroupId"] == "tenant_a"
    assert received["Attributes"]["MessageDeduplicationId"] == "d" * 64
    assert {k: v["StringValue"] for k, v in received["MessageAttributes"].items()} == MESSAGE.attributes


@mock_aws
def test_standard_queue_gets_no_fifo_parameters() -> None:
    client = boto3.client("sqs", region_name="ap-south-1")
    url = client.create_queue(QueueName="processing")["QueueUrl"]
    SqsQueue(queue_url=url, region="ap-south-1").publish_batch([MESSAGE])
    [received] = receive_all(client, url)
    assert "MessageGroupId" not in received["Attributes"]


@mock_aws
def test_sqs_error_is_a_publish_error() -> None:
    queue = SqsQueue(queue_url="https://sqs.ap-south-1.amazonaws.com/123456789012/missing", region="ap-south-1")
    with pytest.raises(PublishError):
        queue.publish_batch([MESSAGE])


@mock_aws
def test_a_batch_of_ten_goes_in_one_call_and_arrives_in_order() -> None:
    client = boto3.client("sqs", region_name="ap-south-1")
    url = client.create_queue(QueueName="processing.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    messages = [
        QueueMessage(body={"n": n}, attributes={"tenantId": "tenant_a"}, group_id="g", deduplication_id=f"d{n}")
        for n in range(10)
    ]
    assert SqsQueue(queue_url=url, region="ap-south-1").publish_batch(messages) == {}
    received = receive_all(client, url)
    assert [json.loads(m["Body"])["n"] for m in received] == list(range(10))


def test_partial_batch_failures_are_reported_by_position_and_sender_fault() -> None:
    """SQS answers a batch with per-entry failures (moto never does for valid input, so its
    documented response is stubbed): SenderFault marks the message itself at fault."""
    queue = SqsQueue(queue_url="https://sqs.ap-south-1.amazonaws.com/123456789012/p", region="ap-south-1")
    messages = [QueueMessage(body={"n": n}) for n in range(3)]
    with Stubber(queue.client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                "Failed": [
                    {"Id": "1", "SenderFault": True, "Code": "InvalidMessageContents", "Message": "bad"},
                    {"Id": "2", "SenderFault": False, "Code": "InternalError"},
                ],
            },
        )
        failures = queue.publish_batch(messages)
    assert failures == {
        1: SendFailure(reason="InvalidMessageContents: bad", permanent=True),
        2: SendFailure(reason="InternalError:", permanent=False),
    }


def test_a_message_over_the_sqs_size_limit_cannot_be_built() -> None:
    with pytest.raises(MessageRejected, match="bytes"):
        QueueMessage(body={"text": "x" * MAX_MESSAGE_BYTES})


def test_more_than_ten_attributes_cannot_be_built() -> None:
    with pytest.raises(MessageRejected, match="attributes"):
        QueueMessage(body={}, attributes={f"a{n}": "v" for n in range(11)})


def test_the_size_limit_counts_attribute_names_types_and_values() -> None:
    body = {"t": ""}
    base = QueueMessage(body=body).size
    with_attribute = QueueMessage(body=body, attributes={"tenantId": "tenant_a"}).size
    assert with_attribute - base == len("tenantId") + len("String") + len("tenant_a")


def test_batches_hold_at_most_ten_messages_and_one_mib() -> None:
    small = [QueueMessage(body={"n": n}) for n in range(23)]
    assert [len(b) for b in batches(small)] == [10, 10, 3]
    big = [QueueMessage(body={"text": "x" * (400 * 1024)}) for _ in range(5)]
    assert [len(b) for b in batches(big)] == [2, 2, 1]
    assert [i for b in batches(big) for i in b] == list(range(5))
