"""Closing an unfinished file (aborted by its client or staff, expired by the sweep) and
giving back what it holds at storage."""

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uploads.errors import Conflict
from uploads.models import Event, MediaStatus, MediaUpload, Strategy
from uploads.services.media import storage_call
from uploads.services.mirror import mirror_media
from uploads.storage import get_storage


def media_abort(*, media: MediaUpload, actor: str) -> MediaUpload:
    """Frees the storage an unfinished upload holds. Idempotent; a finished file is kept.

    The row is claimed before storage is touched: a completion racing this abort then loses
    (media_mark_uploaded refuses an aborted row) instead of having its object deleted after it
    was handed to processing. Storage is released on every call, so a repeat also finishes a
    release an outage interrupted (as does the expiry sweep)."""
    media_close(media=media, status=MediaStatus.ABORTED, actor=actor)
    media.refresh_from_db()
    if media.status == MediaStatus.UPLOADED:
        raise Conflict(f"Upload {media.media_id} is complete and cannot be aborted.", details={"status": media.status})
    media_release(media=media)
    return media


def media_close(*, media: MediaUpload, status: MediaStatus, actor: str, details: dict[str, Any] | None = None) -> bool:
    """Claims a pending upload as aborted or expired, in one conditional UPDATE. True if this
    call closed it; False if it was no longer pending (finished, or closed by someone else).
    `details`: why, in the Event (a refusal at completion says what storage held)."""
    with transaction.atomic():
        claimed = MediaUpload.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(
            status=status, version=F("version") + 1, updated_at=timezone.now()
        )
        if claimed:
            Event.objects.create(
                submission_id=media.submission_id,
                media=media,
                actor=actor,
                action=f"media.{status}",
                details=details or {},
            )
            mirror_media(media.pk)
    return bool(claimed)


def media_release(*, media: MediaUpload) -> None:
    """Gives back what a closed upload holds at storage (the multipart upload and its parts,
    or whatever a racing completion or PUT left) and records that it did. Idempotent. A finished
    upload is never released. Raises StorageUnavailable; released_at stays empty, so the expiry
    sweep tries again."""
    if media.status not in (MediaStatus.ABORTED, MediaStatus.EXPIRED):
        raise Conflict(f"Upload {media.media_id} is {media.status}, not closed.", details={"status": media.status})
    storage = get_storage()
    if media.strategy == Strategy.MULTIPART:
        storage_call(storage.abort_multipart, key=media.object_key, upload_id=media.multipart_upload_id)
    storage_call(storage.delete, key=media.object_key)
    media.released_at = timezone.now()
    MediaUpload.objects.filter(pk=media.pk).update(released_at=media.released_at)
