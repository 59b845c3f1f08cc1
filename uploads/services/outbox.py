"""The transactional outbox: a message is a row written with the change that causes it, and
relayed after commit by a Celery task, or by the periodic relay if that task never runs. Rows
are claimed with a conditional UPDATE, so two senders never hold one row; a failed send is
retried with exponential backoff and jitter, and marked failed for staff after
OUTBOX_MAX_ATTEMPTS.

The outbox knows no destination and no domain rule: each topic registers a Channel (how its rows
are sent, what follows a successful send), and the app registers how delivery is scheduled
(uploads.services.topics, wired in UploadsConfig.ready)."""

import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from portal.observability import current_request_id
from portal.tracing import continued_span, trace_carrier
from uploads.delivery import PublishError, SendFailure
from uploads.models import OutboxMessage, Submission
from uploads.queue import ATTRIBUTE_TYPE, MAX_ATTRIBUTES, MAX_MESSAGE_BYTES, QueueMessage

logger = logging.getLogger(__name__)
Status = OutboxMessage.Status
# Rows the relay claims at once; a channel sends them in whatever batches its destination takes.
# A relay that dies mid-claim holds these until OUTBOX_STALE_CLAIM_SECONDS, and may have sent
# some: they go again, same ids (and, for the mirror, same versions).
RELAY_CLAIM = 100
REQUEST_ID_ATTRIBUTE = "requestId"


@dataclass(frozen=True)
class Channel:
    """How one topic's rows leave. `send` gets claimed rows of its topic and returns the failures
    by position (empty: all taken), or raises PublishError when the destination took none.
    `after_send` runs in the transaction that marks rows sent, with the rows it marked."""

    send: Callable[[Sequence[OutboxMessage]], dict[int, SendFailure]]
    after_send: Callable[[Sequence[OutboxMessage]], None] | None = None


_channels: dict[str, Channel] = {}
_scheduler: list[Callable[[int], None]] = []


def outbox_register(topic: str, channel: Channel) -> None:
    """Declares how `topic` is delivered; registering a topic again replaces its channel."""
    _channels[topic] = channel


def outbox_set_scheduler(schedule: Callable[[int], None]) -> None:
    """How a row's delivery is started right after its commit (a Celery task, in the portal)."""
    _scheduler[:] = [schedule]


def outbox_enqueue(
    *, topic: str, dedup_key: str, message: QueueMessage, submission: Submission | None
) -> OutboxMessage:
    """Must run inside the transaction of the state change; delivery starts after it commits.
    The row keeps what caused it: the request's id (a `requestId` attribute, which queues pass
    on; the mirror's rows keep it for logs) and its trace context (see portal/tracing.py)."""
    row = OutboxMessage.objects.create(
        topic=topic,
        dedup_key=dedup_key,
        submission=submission,
        body=message.body,
        attributes=_with_request_id(message),
        group_id=message.group_id,
        deduplication_id=message.deduplication_id,
        trace_context=trace_carrier(),
    )
    transaction.on_commit(lambda: _schedule_delivery(row.pk))
    return row


def _with_request_id(message: QueueMessage) -> dict[str, str]:
    """The message's attributes plus the current request's (or task's) id, unless the message
    has no room left for it: the id is for tracing a message back, never a reason to refuse it."""
    request_id = current_request_id()
    attributes = dict(message.attributes)
    if not request_id or REQUEST_ID_ATTRIBUTE in attributes or len(attributes) >= MAX_ATTRIBUTES:
        return attributes
    if message.size + len(REQUEST_ID_ATTRIBUTE) + len(ATTRIBUTE_TYPE) + len(request_id) > MAX_MESSAGE_BYTES:
        return attributes
    attributes[REQUEST_ID_ATTRIBUTE] = request_id
    return attributes


def _schedule_delivery(message_id: int) -> None:
    if not _scheduler:
        logger.warning("outbox message %s: no scheduler registered; the relay will send it", message_id)
        return
    try:
        _scheduler[0](message_id)
    except Exception as exc:  # the broker is down; the change has committed, the relay sends it
        logger.warning("outbox message %s: delivery not scheduled (%s); the relay will send it", message_id, exc)


def outbox_deliver(*, message_id: int) -> datetime | None:
    """Sends one row if it is due and nobody holds it. Returns when to try again if this attempt
    failed and the row may be retried; None when nothing more is owed by this caller."""
    token, rows = _claim(OutboxMessage.objects.filter(pk=message_id), limit=1)
    if not rows:
        return None
    _send(rows, token)
    row = OutboxMessage.objects.get(pk=message_id)
    return row.next_attempt_at if row.status == Status.PENDING else None


def outbox_relay(*, limit: int = 1000) -> int:
    """Sends what is owed, in batches: rows that are due, and rows whose sender died mid-send.
    Returns how many it sent. Safe beside other relays and tasks: each batch is claimed first.
    A reclaimed row may have reached the queue before its sender died; it goes again with the
    same deduplication id, which a FIFO queue drops within its 5-minute window and the pipeline
    recognises after it."""
    stale = timezone.now() - timedelta(seconds=settings.OUTBOX_STALE_CLAIM_SECONDS)
    OutboxMessage.objects.filter(status=Status.SENDING, claimed_at__lt=stale).update(
        status=Status.PENDING, claim_token=""
    )
    sent = 0
    for topic in _channels:
        claimed = 0
        while claimed < limit:
            token, rows = _claim(OutboxMessage.objects.filter(topic=topic), limit=min(RELAY_CLAIM, limit - claimed))
            if not rows:
                break
            claimed += len(rows)
            batch_sent, down = _send(rows, token)
            sent += batch_sent
            if down:  # stop spending attempts on a destination that takes nothing
                break
    return sent


def outbox_retry_failed(*, message_ids: Sequence[int] | None = None) -> int:
    """Staff's retry of rows that ran out of attempts: a fresh set of attempts, due now. The
    message is unchanged, deduplication id included: it never reached the queue."""
    rows = OutboxMessage.objects.filter(status=Status.FAILED)
    if message_ids is not None:
        rows = rows.filter(pk__in=message_ids)
    return rows.update(status=Status.PENDING, attempts=0, next_attempt_at=timezone.now())


def backoff(attempts: int) -> timedelta:
    """Exponential, capped, with 'equal jitter': half the delay fixed, half random, so senders
    that failed together do not come back together."""
    delay = min(settings.OUTBOX_BACKOFF_MAX_SECONDS, settings.OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 - jitter, not a secret


def _claim(candidates: QuerySet[OutboxMessage], *, limit: int) -> tuple[str, list[OutboxMessage]]:
    """Due rows, oldest due first (the (status, topic, next_attempt_at) index serves the order, so
    a claim costs the same whatever the backlog, of its own topic or another). Concurrent relays
    take different rows: locked rows are skipped on PostgreSQL; SQLite's IMMEDIATE transactions
    let one claim at a time."""
    now = timezone.now()
    token = secrets.token_hex(16)
    due = {"status": Status.PENDING, "next_attempt_at__lte": now}
    with transaction.atomic():
        rows = list(
            candidates.filter(**due).select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[:limit]
        )
        if not rows:
            return "", []
        claimed = OutboxMessage.objects.filter(pk__in=[row.pk for row in rows], **due).update(
            status=Status.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1
        )
    if claimed != len(rows):  # cannot happen under the lock; if it does, trust the database
        return token, list(OutboxMessage.objects.filter(claim_token=token).order_by("next_attempt_at", "pk"))
    for row in rows:
        row.status, row.claim_token, row.claimed_at, row.attempts = Status.SENDING, token, now, row.attempts + 1
    return token, rows


def _send(rows: list[OutboxMessage], token: str) -> tuple[int, bool]:
    """Sends claimed rows of one topic through its channel; returns how many were sent and whether
    the destination took none of them. Every write after the send is conditional: a sender so
    slow that the relay reclaimed its rows can neither turn a delivered row back into pending
    nor be undone."""
    topic = rows[0].topic
    channel = _channels.get(topic)
    if channel is None:
        failures = {i: SendFailure(reason=f"No channel is registered for topic {topic!r}.") for i in range(len(rows))}
    else:
        try:
            with continued_span(f"outbox send {topic}", [row.trace_context for row in rows], **_span_attributes(rows)):
                failures = channel.send(rows)
        except PublishError as exc:
            failures = {i: SendFailure(reason=str(exc)) for i in range(len(rows))}
    sent = [row for index, row in enumerate(rows) if index not in failures]
    if sent:
        with transaction.atomic():
            OutboxMessage.objects.filter(pk__in=[row.pk for row in sent]).exclude(status=Status.SENT).update(
                status=Status.SENT, sent_at=timezone.now(), last_error="", claim_token=""
            )
            if channel is not None and channel.after_send is not None:
                channel.after_send(sent)
    untried = [rows[i].pk for i, failure in failures.items() if not failure.attempted]
    for index, failure in failures.items():
        if failure.attempted:
            _record_failure(rows[index], token, failure)
    if untried:  # the destination went down before their turn: handed back, no attempt spent
        OutboxMessage.objects.filter(pk__in=untried, claim_token=token).update(
            status=Status.PENDING, attempts=F("attempts") - 1, claim_token=""
        )
    return len(sent), not sent and any(not failure.permanent for failure in failures.values())


def _span_attributes(rows: list[OutboxMessage]) -> dict[str, Any]:
    return {"outbox.topic": rows[0].topic, "outbox.message_ids": [row.pk for row in rows], "outbox.count": len(rows)}


def _record_failure(row: OutboxMessage, token: str, failure: SendFailure) -> None:
    give_up = failure.permanent or row.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    logger.warning(
        "outbox message %s not sent (attempt %s%s): %s",
        row.pk,
        row.attempts,
        ", giving up" if give_up else "",
        failure.reason,
        extra={"outbox_id": row.pk, "origin_request_id": row.attributes.get(REQUEST_ID_ATTRIBUTE)},
    )
    OutboxMessage.objects.filter(pk=row.pk, status=Status.SENDING, claim_token=token).update(
        status=Status.FAILED if give_up else Status.PENDING,
        last_error=failure.reason[:2000],
        next_attempt_at=timezone.now() + backoff(row.attempts),
        claim_token="",
    )
