"""Stage changes of a submission. Wherever one happens, it is the same writes in one
transaction: a conditional UPDATE that bumps the version, an Event, a status update in the
outbox and (when the mirror is on) its mirror write, so every change is announced and none twice."""

from collections.abc import Collection
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uploads.models import Event, OutboxMessage, Stage, Submission
from uploads.queue import QueueMessage
from uploads.services.mirror import mirror_submission
from uploads.services.outbox import outbox_enqueue


def submission_advance(
    *,
    submission_id: int,
    from_stages: Collection[str],
    to: Stage,
    message: str,
    actor: str,
    action: str,
    details: dict[str, Any] | None = None,
    external_id: str = "",
    reason: str = "",
    expected_version: int | None = None,
    **fields: Any,
) -> Submission | None:
    """Moves the submission to `to` if it is in one of `from_stages` (and, when staff acted on
    what a page showed them, still at `expected_version`); returns it as it now is, or None if it
    was not there (a concurrent change got there first). `fields` are written in the same UPDATE."""
    rows = Submission.objects.filter(pk=submission_id, stage__in=from_stages)
    if expected_version is not None:
        rows = rows.filter(version=expected_version)
    now = timezone.now()
    # No savepoint: the writes stand or fall with the caller's transaction, if any.
    with transaction.atomic(savepoint=False):
        advanced = rows.update(
            stage=to, stage_message=message, version=F("version") + 1, updated_at=now, last_progress_at=now, **fields
        )
        if not advanced:
            return None
        submission = Submission.objects.get(pk=submission_id)
        Event.objects.create(
            submission=submission,
            actor=actor,
            action=action,
            reason=reason,
            details=details or {},
            external_id=external_id,
        )
        outbox_enqueue(
            topic=OutboxMessage.Topic.STATUS,
            dedup_key=f"status:{submission.tracking_id}:{submission.version}",
            message=status_message(submission),
            submission=submission,
        )
        mirror_submission(submission)
    return submission


def status_message(submission: Submission) -> QueueMessage:
    """The status update of the notifications queue. `version` orders updates of one submission
    for consumers of a standard queue; a FIFO queue orders them itself (one group per submission)."""
    body: dict[str, Any] = {
        "trackingId": submission.tracking_id,
        "tenantId": submission.tenant_id,
        "stage": submission.stage,
        "message": submission.stage_message,
        "version": submission.version,
        "timestamp": submission.updated_at.isoformat().replace("+00:00", "Z"),
    }
    if submission.catalog_id:
        body["catalogId"] = submission.catalog_id
    if submission.error_details is not None:
        body["errorDetails"] = submission.error_details
    return QueueMessage(
        body=body,
        attributes={"tenantId": submission.tenant_id, "stage": submission.stage},
        group_id=submission.tracking_id,
        deduplication_id=f"{submission.tracking_id}-v{submission.version}",
    )
