from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class QueueMessage:
    body: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    group_id: str = ""
    deduplication_id: str = ""


class PublishError(Exception):
    """The queue did not take the message; the outbox keeps it for another attempt."""


class Publisher(Protocol):
    def publish(self, message: QueueMessage) -> str:
        """Sends one message; returns the queue's message id. Raises PublishError."""
        ...
