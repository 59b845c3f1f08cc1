"""Completing a submission: the moment its files are handed to the processing pipeline."""

import hashlib
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from uploads.errors import Conflict, InvalidInput
from uploads.models import MediaKind, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.queue import QueueMessage
from uploads.services.completion import media_finish_at_storage, media_mark_uploaded, orphans_released
from uploads.services.media import OPEN_STAGES
from uploads.services.outbox import outbox_enqueue
from uploads.services.stages import submission_advance
from uploads.storage import get_storage

PRIORITIES = ("low", "normal", "high")


def processing_deduplication_id(submission: Submission, *, attempt: int = 0) -> str:
    """The pipeline's contract: sha256(trackingId|tenantId|artisanId) for the first request, so
    the FIFO queue drops repeats of it; each staff retry gets its own, equally stable, id."""
    raw = f"{submission.tracking_id}|{submission.tenant_id}|{submission.artisan_id}"
    if attempt:
        raw += f"|retry:{attempt}"
    return hashlib.sha256(raw.encode()).hexdigest()


def submission_complete(
    *, submission: Submission, photo_key: str, audio_key: str, language: str, priority: str = "normal", actor: str
) -> Submission:
    """Verifies both files at storage, then in one transaction marks the submission uploaded and
    writes its processing message to the outbox. A repeat of the same request returns the same
    result and sends nothing more; concurrent repeats race on a conditional UPDATE, one wins."""
    if language not in settings.UPLOADS_LANGUAGES:
        raise InvalidInput(
            f"Language {language!r} is not supported.",
            details={"field": "language", "allowed": settings.UPLOADS_LANGUAGES},
        )
    if priority not in PRIORITIES:
        raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}.", details={"field": "priority"})
    request = {"photo_key": photo_key, "audio_key": audio_key, "language": language, "priority": priority}
    if submission.stage not in OPEN_STAGES:
        return _repeat_of_completed(submission, request)

    media_by_key = {m.object_key: m for m in submission.media.all()}
    photo = _file_of(media_by_key, photo_key, MediaKind.PHOTO, "photoKey")
    audio = _file_of(media_by_key, audio_key, MediaKind.AUDIO, "audioKey")
    # Both files are verified at storage before any row changes: a request that fails for the
    # second file changes no row of the first (its multipart upload may already be completed at
    # storage, which the next call recognises).
    pending = [m for m in (photo, audio) if m.status != MediaStatus.UPLOADED]
    stored = [(m, media_finish_at_storage(media=m, actor=actor)) for m in pending]

    with orphans_released(), transaction.atomic():
        for media, obj in stored:
            media_mark_uploaded(media=media, stored=obj, actor=actor)
        completed = submission_advance(
            submission_id=submission.pk,
            from_stages=OPEN_STAGES,
            to=Stage.UPLOADED,
            message="Upload complete; waiting to be queued.",
            actor=actor,
            action="submission.completed",
            details=request,
            photo_key=photo_key,
            audio_key=audio_key,
            language=language,
            priority=priority,
        )
        if completed is None:
            submission.refresh_from_db()
            return _repeat_of_completed(submission, request)
        _request_processing(completed, attempt=0)
    return completed


def submission_reprocess(
    *, submission: Submission, actor: str, reason: str = "", expected_version: int | None = None
) -> Submission:
    """Staff's retry of a submission the pipeline failed: a new processing request with a new
    deduplication id (the first one may still sit in the FIFO queue's 5-minute window, which
    would silently drop the retry), stable per retry so the retry's own resends are dropped."""
    with transaction.atomic():
        retried = submission_advance(
            submission_id=submission.pk,
            from_stages=[Stage.FAILED],
            to=Stage.UPLOADED,
            message="Sent back for processing.",
            actor=actor,
            action="submission.reprocess",
            reason=reason,
            expected_version=expected_version,
            catalog_id="",
            error_details=None,
        )
        if retried is None:
            submission.refresh_from_db()
            if expected_version is not None and submission.version != expected_version:
                raise Conflict(
                    f"Submission {submission.tracking_id} changed since you looked; nothing was done.",
                    details={"trackingId": submission.tracking_id, "version": submission.version},
                )
            raise Conflict(
                f"Submission {submission.tracking_id} is {submission.stage}; only a failed one can be retried.",
                details={"trackingId": submission.tracking_id, "stage": submission.stage},
            )
        attempt = retried.outbox.filter(topic=OutboxMessage.Topic.PROCESSING).count()
        _request_processing(retried, attempt=attempt)
    return retried


def submissions_queued(sent: Sequence[OutboxMessage]) -> None:
    """What follows a processing request reaching the queue: its submission, if still uploaded,
    is queued. Runs in the transaction that marks the requests sent; a repeat changes nothing."""
    for row in sent:
        if row.submission_id is not None:
            submission_advance(
                submission_id=row.submission_id,
                from_stages=[Stage.UPLOADED],
                to=Stage.QUEUED,
                message="Waiting for processing.",
                actor="system",
                action="submission.queued",
            )


def _request_processing(submission: Submission, *, attempt: int) -> None:
    outbox_enqueue(
        topic=OutboxMessage.Topic.PROCESSING,
        dedup_key=f"processing:{submission.tracking_id}:{attempt}",
        message=processing_message(submission, attempt=attempt),
        submission=submission,
    )


def processing_message(submission: Submission, *, attempt: int = 0) -> QueueMessage:
    storage = get_storage()
    return QueueMessage(
        body={
            "trackingId": submission.tracking_id,
            "tenantId": submission.tenant_id,
            "artisanId": submission.artisan_id,
            "photoKey": storage.object_uri(submission.photo_key),
            "audioKey": storage.object_uri(submission.audio_key),
            "language": submission.language,
            "priority": submission.priority,
            "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        },
        attributes={"tenantId": submission.tenant_id, "language": submission.language, "priority": submission.priority},
        group_id=submission.tenant_id,
        deduplication_id=processing_deduplication_id(submission, attempt=attempt),
    )


def _file_of(media_by_key: dict[str, MediaUpload], key: str, kind: str, field: str) -> MediaUpload:
    media = media_by_key.get(key)
    if media is None:
        raise InvalidInput(f"{field} is not a file of this submission.", details={"field": field, "key": key})
    if media.kind != kind:
        raise InvalidInput(f"{field} names a {media.kind}, not a {kind}.", details={"field": field, "key": key})
    return media


def _repeat_of_completed(submission: Submission, request: dict[str, str]) -> Submission:
    if submission.stage in (Stage.ABORTED, Stage.EXPIRED):
        raise Conflict(
            f"Submission {submission.tracking_id} is {submission.stage}.",
            details={"trackingId": submission.tracking_id, "stage": submission.stage},
        )
    recorded = {name: getattr(submission, name) for name in request}
    if recorded != request:
        raise Conflict(
            f"Submission {submission.tracking_id} was already completed with other values.",
            details={"trackingId": submission.tracking_id, "completedWith": recorded},
        )
    return submission
