"""The transactional outbox: a message is a row written with the change that causes it, and
delivered after commit. A row is claimed with a conditional UPDATE, so two deliverers never
send it at once; a failed send leaves it pending for the next attempt."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uploads.models import Event, OutboxMessage, Stage, Submission
from uploads.queue import PublishError, QueueMessage, get_publisher

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# A row still "sending" this long after its claim belongs to a sender that died mid-send;
# publishers bound each send well below it (see uploads/queue/sqs.py).
STALE_CLAIM = timedelta(minutes=5)


def outbox_enqueue(
    *, topic: str, dedup_key: str, message: QueueMessage, submission: Submission | None
) -> OutboxMessage:
    """Must run inside the transaction of the state change; delivery starts after it commits."""
    row = OutboxMessage.objects.create(
        topic=topic,
        dedup_key=dedup_key,
        submission=submission,
        body=message.body,
        attributes=message.attributes,
        group_id=message.group_id,
        deduplication_id=message.deduplication_id,
    )
    # robust: the change has committed and the client gets its answer even if this first
    # attempt breaks; outbox_redrive picks the row up again.
    transaction.on_commit(lambda: outbox_deliver(message_id=row.pk), robust=True)
    return row


def outbox_deliver(*, message_id: int) -> bool:
    """Sends one pending row. True if this call sent it; safe to call any number of times.

    Every write after the send is conditional: a sender so slow that outbox_redrive reclaimed
    its row can neither turn a row another sender delivered back into pending, nor be undone."""
    claim = timezone.now()
    claimed = OutboxMessage.objects.filter(pk=message_id, status=OutboxMessage.Status.PENDING).update(
        status=OutboxMessage.Status.SENDING, claimed_at=claim, attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    row = OutboxMessage.objects.get(pk=message_id)
    message = QueueMessage(
        body=row.body, attributes=row.attributes, group_id=row.group_id, deduplication_id=row.deduplication_id
    )
    try:
        get_publisher(row.topic).publish(message)
    except PublishError as exc:
        logger.warning("outbox message %s not sent (attempt %s): %s", row.pk, row.attempts, exc)
        next_status = OutboxMessage.Status.FAILED if row.attempts >= MAX_ATTEMPTS else OutboxMessage.Status.PENDING
        OutboxMessage.objects.filter(pk=row.pk, status=OutboxMessage.Status.SENDING, claimed_at=claim).update(
            status=next_status, last_error=str(exc)[:2000]
        )
        return False
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=row.pk).exclude(status=OutboxMessage.Status.SENT).update(
            status=OutboxMessage.Status.SENT, sent_at=timezone.now(), last_error=""
        )
        if row.topic == OutboxMessage.Topic.PROCESSING and row.submission_id is not None:
            _mark_queued(row.submission_id)
    return True


def _mark_queued(submission_id: int) -> None:
    advanced = Submission.objects.filter(pk=submission_id, stage=Stage.UPLOADED).update(
        stage=Stage.QUEUED,
        stage_message="Waiting for processing.",
        version=F("version") + 1,
        updated_at=timezone.now(),
    )
    if advanced:
        Event.objects.create(submission_id=submission_id, actor="system", action="submission.queued")


def outbox_redrive(*, limit: int = 500, retry_failed: bool = False) -> int:
    """Sends what is still owed: pending rows, rows a crashed sender left claimed and, when
    staff ask, rows that ran out of attempts. Returns how many this call sent. Safe beside other
    redrives: each row is still claimed one by one. A reclaimed row may have reached the queue
    before its sender died; it goes again with the same deduplication id, which SQS FIFO drops
    only within its 5-minute window, so the pipeline treats a repeated trackingId as a no-op."""
    if retry_failed:
        OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).update(
            status=OutboxMessage.Status.PENDING, attempts=0
        )
    OutboxMessage.objects.filter(
        status=OutboxMessage.Status.SENDING, claimed_at__lt=timezone.now() - STALE_CLAIM
    ).update(status=OutboxMessage.Status.PENDING)
    due = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).order_by("created_at")
    return sum(outbox_deliver(message_id=pk) for pk in due.values_list("pk", flat=True)[:limit])
