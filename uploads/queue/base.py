"""What every publisher takes and returns (failures are reported as uploads.delivery's). A
QueueMessage cannot be built outside SQS's limits, so an oversized message fails where it is
made, not at the queue hours later."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from uploads.delivery import PublishError, SendFailure

__all__ = ["MessageRejected", "PublishError", "Publisher", "QueueMessage", "SendFailure", "batches"]

# SQS's limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html):
# the body plus every attribute's name, type and value; a batch holds at most 10 messages and
# at most the same 1 MiB in all.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_ATTRIBUTES = 10
MAX_BATCH_MESSAGES = 10
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES
ATTRIBUTE_TYPE = "String"


class MessageRejected(ValueError):
    """The message breaks a queue limit: sending it again can never succeed."""


@dataclass(frozen=True)
class QueueMessage:
    body: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    group_id: str = ""
    deduplication_id: str = ""

    def __post_init__(self) -> None:
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise MessageRejected(f"{len(self.attributes)} message attributes; a queue takes at most {MAX_ATTRIBUTES}.")
        if any(not value for value in self.attributes.values()):
            raise MessageRejected("A message attribute may not be empty.")
        if self.size > MAX_MESSAGE_BYTES:
            raise MessageRejected(f"The message is {self.size} bytes; a queue takes at most {MAX_MESSAGE_BYTES}.")

    @cached_property
    def encoded_body(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True)

    @cached_property
    def size(self) -> int:
        attributes = sum(len(k.encode()) + len(ATTRIBUTE_TYPE) + len(v.encode()) for k, v in self.attributes.items())
        return len(self.encoded_body.encode()) + attributes


class Publisher(Protocol):
    def publish_batch(self, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
        """Sends up to MAX_BATCH_MESSAGES messages (MAX_BATCH_BYTES in all) at once. Returns the
        failures by position in `messages`, empty when all were taken; raises PublishError when
        none was."""
        ...

    def ping(self) -> None:
        """Raises unless the queue takes messages now (readiness probes; see portal/health.py)."""
        ...


def batches(messages: Sequence[QueueMessage]) -> list[list[int]]:
    """Positions of `messages`, grouped in order into batches a queue takes in one call."""
    groups: list[list[int]] = []
    size = 0
    for index, message in enumerate(messages):
        if not groups or len(groups[-1]) == MAX_BATCH_MESSAGES or size + message.size > MAX_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += message.size
    return groups
