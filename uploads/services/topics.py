"""The outbox's topics and how each is delivered: the one place that wires the generic outbox
(uploads.services.outbox) to its destinations, to the rules that follow a delivery, and to the
Celery task that starts one. Registered once, when the app is ready."""

from collections.abc import Callable, Sequence

from uploads.delivery import PublishError, SendFailure
from uploads.models import OutboxMessage
from uploads.queue import MessageRejected, QueueMessage, batches, get_publisher
from uploads.services.mirror import mirror_send
from uploads.services.outbox import Channel, outbox_register, outbox_set_scheduler
from uploads.services.submissions import submissions_queued
from uploads.tasks import deliver_outbox_message

Topic = OutboxMessage.Topic


def register_topics() -> None:
    outbox_register(Topic.PROCESSING, Channel(send=queue_channel(Topic.PROCESSING), after_send=submissions_queued))
    outbox_register(Topic.STATUS, Channel(send=queue_channel(Topic.STATUS)))
    outbox_register(Topic.MIRROR, Channel(send=mirror_send))
    outbox_set_scheduler(_deliver_soon)


def _deliver_soon(message_id: int) -> None:
    deliver_outbox_message.delay(message_id)


def queue_channel(topic: str) -> Callable[[Sequence[OutboxMessage]], dict[int, SendFailure]]:
    """Rows of `topic` go to its queue in the batches a queue takes. A row that breaks a queue
    limit fails for good; once the queue is down, the remaining batches are not tried."""

    def send(rows: Sequence[OutboxMessage]) -> dict[int, SendFailure]:
        failures: dict[int, SendFailure] = {}
        messages: dict[int, QueueMessage] = {}
        for index, row in enumerate(rows):
            try:
                messages[index] = QueueMessage(
                    body=row.body,
                    attributes=row.attributes,
                    group_id=row.group_id,
                    deduplication_id=row.deduplication_id,
                )
            except MessageRejected as exc:
                failures[index] = SendFailure(reason=str(exc), permanent=True)
        positions = list(messages)
        publisher = get_publisher(topic)
        down = ""
        for group in batches([messages[i] for i in positions]):
            indexes = [positions[i] for i in group]
            if down:
                failures.update({i: SendFailure(reason=down, attempted=False) for i in indexes})
                continue
            try:
                rejected = publisher.publish_batch([messages[i] for i in indexes])
            except PublishError as exc:
                down = str(exc)
                failures.update({i: SendFailure(reason=down) for i in indexes})
                continue
            failures.update({indexes[k]: failure for k, failure in rejected.items()})
        return failures

    return send
