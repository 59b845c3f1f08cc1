"""The SQS publisher: the only module that speaks SQS. FIFO queues (URL ends in .fifo) get the
group and deduplication ids; standard queues must not be sent them."""

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from uploads.queue.base import PublishError, QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsQueue:
    def __init__(self, *, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region
        self.is_fifo = queue_url.endswith(".fifo")

    @cached_property
    def client(self) -> "SQSClient":
        # Bounded: a send gives up in well under a minute, far inside the outbox's stale-claim
        # window, and never holds a completing request for long.
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
        return boto3.session.Session().client("sqs", region_name=self.region, config=config)

    def publish(self, message: QueueMessage) -> str:
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": json.dumps(message.body, separators=(",", ":")),
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value} for name, value in message.attributes.items()
            },
        }
        if self.is_fifo:
            params["MessageGroupId"] = message.group_id
            params["MessageDeduplicationId"] = message.deduplication_id
        try:
            response = self.client.send_message(**params)
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(str(exc)) from exc
        return response["MessageId"]
