"""What staff do to a submission from the admin: retry processing, abort, expire now, re-send the
latest status update, retry failed messages. Each goes through the same services as the API and
the background jobs, records who did it and why, and acts only on the submission as the staff
member last saw it: if its version moved since, the action is refused, never applied to a state
nobody looked at."""

from collections.abc import Callable
from dataclasses import dataclass, replace

from django.db import transaction

from uploads.errors import Conflict, InvalidInput, StorageUnavailable
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.services.closing import media_close, media_release
from uploads.services.media import OPEN_STAGES
from uploads.services.outbox import outbox_enqueue, outbox_retry_failed
from uploads.services.stages import status_message, submission_advance
from uploads.services.submissions import submission_reprocess

MAX_REASON = 500


@dataclass(frozen=True)
class StaffAction:
    """An action as the confirmation page presents it: what it does, and to which rows."""

    name: str
    label: str
    effect: str  # what will happen to a row it applies to
    refusal: Callable[[Submission], str | None]  # why it cannot apply to a row now; None if it can
    run: Callable[[Submission, str, str, int], str]  # (submission, actor, reason, expected version) → outcome


def staff_action_refusal(
    *, action: StaffAction, submission: Submission, expected_version: int | None = None
) -> str | None:
    """Why `action` would be refused for this row, for the confirmation page and the final check alike."""
    if expected_version is not None and submission.version != expected_version:
        return f"It changed since you looked (version {expected_version}, now {submission.version}); nothing was done."
    return action.refusal(submission)


def staff_action_run(
    *, action: StaffAction, submission: Submission, actor: str, reason: str, expected_version: int
) -> str:
    """Runs one action on one row and returns what happened, in words for the staff member.
    Raises DomainError with the reason when the row is refused."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("A reason is required.", details={"field": "reason"})
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"The reason is longer than {MAX_REASON} characters.", details={"field": "reason"})
    submission.refresh_from_db()
    refusal = staff_action_refusal(action=action, submission=submission, expected_version=expected_version)
    if refusal:
        raise Conflict(refusal, details={"trackingId": submission.tracking_id, "stage": submission.stage})
    return action.run(submission, actor, reason, expected_version)


def submission_close(
    *, submission: Submission, to: Stage, actor: str, reason: str, expected_version: int | None = None
) -> list[MediaUpload]:
    """Ends an unfinished submission (aborted or expired) and every file still open in it, in one
    transaction; then gives their storage back. Returns the files whose storage could not be
    released now (storage unreachable): they stay marked unreleased and the expiry sweep frees
    them later, as it does after an interrupted client abort."""
    status = MediaStatus.ABORTED if to == Stage.ABORTED else MediaStatus.EXPIRED
    verb = "Aborted" if to == Stage.ABORTED else "Expired"
    with transaction.atomic():
        closed = submission_advance(
            submission_id=submission.pk,
            from_stages=OPEN_STAGES,
            to=to,
            message=f"{verb} by staff.",
            actor=actor,
            action=f"submission.{to}",
            reason=reason,
            expected_version=expected_version,
        )
        if closed is None:
            submission.refresh_from_db()
            raise Conflict(
                f"Submission {submission.tracking_id} is {submission.stage}; only an unfinished one can be closed.",
                details={"trackingId": submission.tracking_id, "stage": submission.stage},
            )
        files = [
            m
            for m in submission.media.filter(status=MediaStatus.PENDING)
            if media_close(media=m, status=status, actor=actor)
        ]
    unreleased = []
    for media in files:  # storage is touched after the commit, never inside the transaction
        media.refresh_from_db()
        try:
            media_release(media=media)
        except StorageUnavailable:
            unreleased.append(media)
    return unreleased


def submission_resend_status(
    *, submission: Submission, actor: str, reason: str, expected_version: int | None = None
) -> OutboxMessage:
    """Sends the current status update again, for a consumer that lost it. It carries the same
    version (consumers that order by version ignore it if they had it) and a deduplication id of
    its own: a FIFO queue would silently drop a repeat of the original's within five minutes."""
    with transaction.atomic():
        current = Submission.objects.select_for_update().get(pk=submission.pk)
        if expected_version is not None and current.version != expected_version:
            raise Conflict(
                f"Submission {current.tracking_id} changed since you looked; nothing was sent.",
                details={"trackingId": current.tracking_id, "version": current.version},
            )
        resends = Event.objects.filter(submission=current, action="submission.status_resent").count() + 1
        message = status_message(current)
        row = outbox_enqueue(
            topic=OutboxMessage.Topic.STATUS,
            dedup_key=f"status:{current.tracking_id}:{current.version}:resend:{resends}",
            message=replace(message, deduplication_id=f"{message.deduplication_id}-r{resends}"),
            submission=current,
        )
        Event.objects.create(
            submission=current,
            actor=actor,
            action="submission.status_resent",
            reason=reason,
            details={"version": current.version, "stage": current.stage},
        )
    return row


def submission_retry_messages(*, submission: Submission, actor: str, reason: str) -> int:
    """Gives the submission's failed outbox messages a fresh set of attempts; returns how many."""
    with transaction.atomic():
        failed = list(submission.outbox.filter(status=OutboxMessage.Status.FAILED).values_list("pk", flat=True))
        retried = outbox_retry_failed(message_ids=failed)
        if retried:
            Event.objects.create(
                submission=submission,
                actor=actor,
                action="outbox.retried",
                reason=reason,
                details={"messages": retried},
            )
    return retried


def _unfinished(submission: Submission) -> str | None:
    if submission.stage in OPEN_STAGES:
        return None
    return f"It is {submission.stage}; only an unfinished upload (initiated or uploading) can be closed."


def _failed(submission: Submission) -> str | None:
    return None if submission.stage == Stage.FAILED else f"It is {submission.stage}; only a failed one can be retried."


def _has_failed_messages(submission: Submission) -> str | None:
    if submission.outbox.filter(status=OutboxMessage.Status.FAILED).exists():
        return None
    return "It has no failed messages."


def _run_reprocess(submission: Submission, actor: str, reason: str, version: int) -> str:
    submission_reprocess(submission=submission, actor=actor, reason=reason, expected_version=version)
    return "Sent back for processing with a new deduplication id."


def _closer(to: Stage) -> Callable[[Submission, str, str, int], str]:
    def run(submission: Submission, actor: str, reason: str, version: int) -> str:
        unreleased = submission_close(
            submission=submission, to=to, actor=actor, reason=reason, expected_version=version
        )
        if unreleased:
            ids = ", ".join(m.media_id for m in unreleased)
            return f"{to.label}; storage was unreachable for {ids}, which the expiry sweep will free."
        return f"{to.label}; its unfinished files were removed from storage."

    return run


def _run_resend(submission: Submission, actor: str, reason: str, version: int) -> str:
    submission_resend_status(submission=submission, actor=actor, reason=reason, expected_version=version)
    return f"Status update “{submission.stage}” (version {version}) queued again."


def _run_retry_messages(submission: Submission, actor: str, reason: str, version: int) -> str:
    retried = submission_retry_messages(submission=submission, actor=actor, reason=reason)
    return f"{retried} failed message(s) will be sent again shortly."


STAFF_ACTIONS: dict[str, StaffAction] = {
    action.name: action
    for action in [
        StaffAction(
            name="reprocess",
            label="Retry processing",
            effect="A new processing request is queued (with a new deduplication id); the stage becomes uploaded.",
            refusal=_failed,
            run=_run_reprocess,
        ),
        StaffAction(
            name="abort",
            label="Abort",
            effect="The stage becomes aborted; unfinished files are aborted at storage and their bytes deleted.",
            refusal=_unfinished,
            run=_closer(Stage.ABORTED),
        ),
        StaffAction(
            name="expire",
            label="Expire now",
            effect="The stage becomes expired, as the expiry sweep would do; unfinished files are freed at storage.",
            refusal=_unfinished,
            run=_closer(Stage.EXPIRED),
        ),
        StaffAction(
            name="resend_status",
            label="Re-send the latest status update",
            effect="The current status update is sent to the notifications queue again. The stage does not change.",
            refusal=lambda submission: None,
            run=_run_resend,
        ),
        StaffAction(
            name="retry_messages",
            label="Retry failed messages",
            effect="Outbox messages that ran out of attempts get a fresh set, due now. The stage does not change.",
            refusal=_has_failed_messages,
            run=_run_retry_messages,
        ),
    ]
}
