"""The SQS publisher: the only module that speaks SQS. FIFO queues (URL ends in .fifo) get the
group and deduplication ids; standard queues must not be sent them."""

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from uploads.queue.base import ATTRIBUTE_TYPE, MAX_BATCH_MESSAGES, PublishError, QueueMessage, SendFailure

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


class SqsQueue:
    def __init__(self, *, queue_url: str, region: str) -> None:
        self.queue_url = queue_url
        self.region = region
        self.is_fifo = queue_url.endswith(".fifo")

    @cached_property
    def client(self) -> "SQSClient":
        # Bounded: a send gives up in well under a minute, far inside the outbox's stale-claim
        # window. botocore's own retries are kept few: the outbox retries with backoff.
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
        return boto3.session.Session().client("sqs", region_name=self.region, config=config)

    def publish_batch(self, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
        if len(messages) > MAX_BATCH_MESSAGES:
            raise ValueError(f"SQS takes at most {MAX_BATCH_MESSAGES} messages per batch.")
        entries = [self._entry(str(index), message) for index, message in enumerate(messages)]
        try:
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(str(exc)) from exc
        return {
            int(failed["Id"]): SendFailure(
                reason=f"{failed['Code']}: {failed.get('Message', '')}".strip(), permanent=failed["SenderFault"]
            )
            for failed in response.get("Failed", [])
        }

    def _entry(self, entry_id: str, message: QueueMessage) -> "SendMessageBatchRequestEntryTypeDef":
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": message.encoded_body,
            "MessageAttributes": {
                name: {"DataType": ATTRIBUTE_TYPE, "StringValue": value} for name, value in message.attributes.items()
            },
        }
        if self.is_fifo:
            entry["MessageGroupId"] = message.group_id
            entry["MessageDeduplicationId"] = message.deduplication_id
        return entry  # type: ignore[return-value]

    def ping(self) -> None:
        """GetQueueAttributes: the queue exists and these credentials reach it."""
        try:
            self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(str(exc)) from exc
