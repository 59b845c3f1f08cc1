"""Which queue each topic goes to: SQS when its URL is configured, else the local queue."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from uploads.queue.base import Publisher, PublishError, QueueMessage
from uploads.queue.local import LocalQueue
from uploads.queue.sqs import SqsQueue

__all__ = ["LocalQueue", "PublishError", "Publisher", "QueueMessage", "SqsQueue", "get_publisher"]


def get_publisher(topic: str) -> Publisher:
    """`processing` goes to SQS_QUEUE_URL; other topics get their own local file until their
    queue is configured."""
    queue_url = settings.SQS_QUEUE_URL if topic == "processing" else ""
    return _publisher_for(topic, queue_url, settings.AWS_REGION, str(settings.UPLOADS_LOCAL_QUEUE_DIR))


@lru_cache(maxsize=16)
def _publisher_for(topic: str, queue_url: str, region: str, local_dir: str) -> Publisher:
    if queue_url:
        return SqsQueue(queue_url=queue_url, region=region)
    return LocalQueue(Path(local_dir) / f"{topic}.jsonl")
