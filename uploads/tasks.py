"""Celery tasks: thin, take ids, safe to run twice; the services hold the rules. Names are
stable, so a deploy never strands queued tasks under an old name."""

import logging
from typing import Any

from celery import Task, shared_task
from django.db import DatabaseError
from django.utils import timezone

from uploads.dynamodb import DynamoDBUnavailable
from uploads.services import mirror_pull, outbox_deliver, outbox_relay, sweep_expired

logger = logging.getLogger(__name__)


class ReliableTask(Task):
    """Acknowledged only once done, so a task whose worker dies is handed out again, and retried
    with exponential backoff and jitter, a bounded number of times, when the database fails it.
    A send the queue refused is retried on the outbox row's own backoff (see below), and by the
    periodic relay once these retries run out."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (DatabaseError,)
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 5


@shared_task(name="uploads.outbox.deliver", bind=True, base=ReliableTask)
def deliver_outbox_message(self: ReliableTask, message_id: int) -> None:
    """Published right after the change commits, so a message usually leaves within milliseconds."""
    again_at = outbox_deliver(message_id=message_id)
    if again_at is not None and self.request.retries < ReliableTask.max_retries:
        raise self.retry(countdown=max((again_at - timezone.now()).total_seconds(), 0))


@shared_task(name="uploads.outbox.relay", base=ReliableTask)
def relay_outbox() -> int:
    """Periodic: whatever the per-message tasks did not send (broker down, worker killed)."""
    return outbox_relay()


@shared_task(name="uploads.sweep.expire", base=ReliableTask)
def sweep_expired_uploads() -> dict[str, Any]:
    """Periodic: abandoned uploads give their storage back."""
    return sweep_expired(dry_run=False).counts()


@shared_task(name="uploads.mirror.pull", base=ReliableTask)
def pull_mirror() -> dict[str, int]:
    """Periodic, when the mirror is on: processing reports the pipeline wrote to DynamoDB. An
    outage is not retried here: the next pull, seconds later, starts over."""
    try:
        return mirror_pull().counts()
    except DynamoDBUnavailable as exc:
        logger.warning("mirror pull skipped: DynamoDB did not answer (%s)", exc)
        return {}
