"""Which queue each topic goes to: SQS when its URL is configured, else the local queue."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from uploads.queue.base import (
    ATTRIBUTE_TYPE,
    MAX_ATTRIBUTES,
    MAX_MESSAGE_BYTES,
    MessageRejected,
    Publisher,
    PublishError,
    QueueMessage,
    SendFailure,
    batches,
)
from uploads.queue.local import LocalQueue
from uploads.queue.sqs import SqsQueue

__all__ = [
    "ATTRIBUTE_TYPE",
    "MAX_ATTRIBUTES",
    "MAX_MESSAGE_BYTES",
    "LocalQueue",
    "MessageRejected",
    "PublishError",
    "Publisher",
    "QueueMessage",
    "SendFailure",
    "SqsQueue",
    "batches",
    "get_publisher",
]

QUEUE_URL_SETTINGS = {"processing": "SQS_QUEUE_URL", "status": "SQS_STATUS_QUEUE_URL"}


def get_publisher(topic: str) -> Publisher:
    """Each topic goes to its SQS queue when one is configured, else to its own local file."""
    queue_url = getattr(settings, QUEUE_URL_SETTINGS[topic])
    return _publisher_for(topic, queue_url, settings.AWS_REGION, str(settings.UPLOADS_LOCAL_QUEUE_DIR))


@lru_cache(maxsize=16)
def _publisher_for(topic: str, queue_url: str, region: str, local_dir: str) -> Publisher:
    if queue_url:
        return SqsQueue(queue_url=queue_url, region=region)
    return LocalQueue(Path(local_dir) / f"{topic}.jsonl")
