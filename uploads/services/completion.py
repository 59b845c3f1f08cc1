"""Completing one file: storage first (complete the multipart upload, check the object as
declared), then the row, so a caller can verify several files before recording any."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uploads.errors import ObjectMissing, PartsMismatch, TooLarge, UploadClosed
from uploads.models import Event, MediaStatus, MediaUpload, Strategy, Submission
from uploads.services.media import media_plan, require_pending, storage_call, submission_uploading, tenant_max_bytes
from uploads.services.mirror import mirror_media
from uploads.services.parts import ClaimedPart, parts_check_claimed, parts_of_open_upload, parts_of_planned_upload
from uploads.storage import PartsRejected, StorageBackend, StoredObject, StoredPart, UploadNotFound, get_storage


@dataclass(frozen=True)
class VerifiedObject(StoredObject):
    """An object completion found at storage as declared, and the parts it was assembled from
    (empty for a single PUT, or when an earlier call completed it)."""

    parts: tuple[StoredPart, ...] = ()


def media_complete(
    *, media: MediaUpload, actor: str, claimed_parts: Sequence[ClaimedPart] | None = None
) -> MediaUpload:
    """Checks storage (not the client) and records the file as uploaded. Idempotent, also when
    storage completed an earlier call whose response was lost. `claimed_parts`: the parts the
    client believes it sent (Uppy sends them); each must be what storage holds."""
    if media.status == MediaStatus.UPLOADED:
        return media
    stored = media_finish_at_storage(media=media, claimed_parts=claimed_parts)
    with transaction.atomic():
        media_mark_uploaded(media=media, stored=stored, actor=actor)
    return media


def media_finish_at_storage(
    *, media: MediaUpload, claimed_parts: Sequence[ClaimedPart] | None = None
) -> VerifiedObject:
    """The storage half of completion: completes a multipart upload and checks the object is
    there as declared. Changes no row, so a caller can verify several files before recording any."""
    require_pending(media)
    storage = get_storage()
    parts: list[StoredPart] = []
    if media.strategy == Strategy.MULTIPART:
        parts = _complete_at_storage(media, storage, claimed_parts)
    stored = storage_call(storage.head, key=media.object_key)
    _check_stored_object(media, stored, storage)
    assert stored is not None
    return VerifiedObject(size=stored.size, etag=stored.etag, content_type=stored.content_type, parts=tuple(parts))


def media_mark_uploaded(*, media: MediaUpload, stored: StoredObject, actor: str) -> None:
    """The database half; runs inside the caller's transaction. A concurrent completion may
    have recorded it first (fine); a concurrent abort wins (UploadClosed). An open multipart
    upload gets the size and parts it turned out to have, for triage."""
    now = timezone.now()
    facts: dict[str, int] = {}
    if media.strategy == Strategy.MULTIPART and media.part_count is None:
        facts["declared_size"] = stored.size
        parts = stored.parts if isinstance(stored, VerifiedObject) else ()
        if parts:
            facts.update(part_size=parts[0].size, part_count=len(parts))
    claimed = MediaUpload.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(
        status=MediaStatus.UPLOADED,
        etag=stored.etag,
        size=stored.size,
        version=F("version") + 1,
        updated_at=now,
        **facts,
    )
    if claimed:
        Event.objects.create(
            submission_id=media.submission_id,
            media=media,
            actor=actor,
            action="media.uploaded",
            details={"size": stored.size, "etag": stored.etag},
        )
        submission_uploading(media.submission_id, actor)
        Submission.objects.filter(pk=media.submission_id).update(last_progress_at=now)
        mirror_media(media.pk)
    media.refresh_from_db()
    if media.status != MediaStatus.UPLOADED:
        # Aborted (or expired) while we completed it at storage: the object we just made or
        # checked belongs to nobody, so it goes, as the abort meant it to.
        storage_call(get_storage().delete, key=media.object_key)
        raise UploadClosed(f"Upload {media.media_id} is {media.status}.", details={"status": media.status})


def _complete_at_storage(
    media: MediaUpload, storage: StorageBackend, claimed_parts: Sequence[ClaimedPart] | None
) -> list[StoredPart]:
    """Completes at storage with storage's own part list, once it passes the rules; returns
    the parts used (none when an earlier call completed it)."""
    plan = media_plan(media)
    try:
        stored = storage_call(storage.list_parts, key=media.object_key, upload_id=media.multipart_upload_id)
    except UploadNotFound:
        return []  # completed earlier (or aborted): the HEAD that follows tells which
    if claimed_parts is not None:
        parts_check_claimed(stored=stored, claimed=claimed_parts)
    if plan is None:
        limit = tenant_max_bytes(tenant=media.submission.tenant, kind=media.kind)
        parts = parts_of_open_upload(stored=stored, max_bytes=limit, kind=media.kind)
    else:
        parts = parts_of_planned_upload(plan=plan, stored=stored)
    try:
        storage_call(storage.complete_multipart, key=media.object_key, upload_id=media.multipart_upload_id, parts=parts)
    except UploadNotFound:
        return []  # a concurrent completion won the race
    except PartsRejected as exc:
        raise PartsMismatch(
            "A part changed at storage while completing; check progress and complete again.",
            details={"reason": str(exc), "numParts": len(parts)},
        ) from exc
    return parts


def _check_stored_object(media: MediaUpload, obj: StoredObject | None, storage: StorageBackend) -> None:
    if obj is None:
        raise ObjectMissing(
            f"No bytes are at storage for {media.object_key} yet.",
            details={"key": media.object_key, "mediaId": media.media_id},
        )
    if obj.size < 1:  # a form POST's policy refuses an empty file on S3; an S3-compatible server may not
        raise ObjectMissing(
            f"Storage holds an empty object for {media.object_key}.", details={"key": media.object_key, "size": 0}
        )
    if media.declared_size is not None and obj.size != media.declared_size:
        raise ObjectMissing(
            f"Storage holds {obj.size} bytes for {media.object_key}; {media.declared_size} were declared.",
            details={"key": media.object_key, "size": obj.size, "expectedSize": media.declared_size},
        )
    limit = tenant_max_bytes(tenant=media.submission.tenant, kind=media.kind)
    if obj.size > limit:
        storage_call(storage.delete, key=media.object_key)
        raise TooLarge(f"A {media.kind} may be at most {limit} bytes.", details={"maxBytes": limit, "size": obj.size})
