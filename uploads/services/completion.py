"""Completing one file: storage first (complete the multipart upload, check the object as
declared), then the row, so a caller can verify several files before recording any.

Storage calls stay outside database transactions, as in uploads.services.media: an object to
delete because its file was closed meanwhile is deleted once the recording transaction is over
(`orphans_released`), and a file refused as over its limit is closed, then released, outside any."""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from uploads.errors import ObjectMissing, PartsMismatch, StorageUnavailable, TooLarge, UploadClosed
from uploads.models import Event, MediaStatus, MediaUpload, Strategy, Submission
from uploads.services.closing import media_close, media_release
from uploads.services.media import media_plan, require_pending, storage_call, submission_uploading, tenant_max_bytes
from uploads.services.mirror import mirror_media
from uploads.services.parts import ClaimedPart, parts_check_claimed, parts_of_open_upload, parts_of_planned_upload
from uploads.storage import PartsRejected, StorageBackend, StoredObject, StoredPart, UploadNotFound, get_storage

logger = logging.getLogger(__name__)


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
    stored = media_finish_at_storage(media=media, claimed_parts=claimed_parts, actor=actor)
    with orphans_released(), transaction.atomic():
        media_mark_uploaded(media=media, stored=stored, actor=actor)
    return media


def media_finish_at_storage(
    *, media: MediaUpload, claimed_parts: Sequence[ClaimedPart] | None = None, actor: str = "system"
) -> VerifiedObject:
    """The storage half of completion: completes a multipart upload and checks the object is
    there as declared. Changes no row, so a caller can verify several files before recording
    any; except that an object over the tenant's limit closes its file for good (TooLarge), so
    the URL that stored it cannot store it again and have it count. An empty object is removed
    and the file stays open, for the client to send its bytes again (ObjectMissing).

    Must run outside a database transaction (it may delete at storage)."""
    require_pending(media)
    storage = get_storage()
    parts: list[StoredPart] = []
    if media.strategy == Strategy.MULTIPART:
        parts = _complete_at_storage(media, storage, claimed_parts)
    stored = storage_call(storage.head, key=media.object_key)
    _check_stored_object(media, stored, storage, actor)
    assert stored is not None
    return VerifiedObject(size=stored.size, etag=stored.etag, content_type=stored.content_type, parts=tuple(parts))


class OrphanedObject(UploadClosed):
    """The file was closed (aborted, expired) while completion made or checked its object at
    storage: the object belongs to nobody and goes, once the transaction is over."""

    def __init__(self, message: str, *, key: str, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.key = key


@contextmanager
def orphans_released() -> Iterator[None]:
    """Put around (outside) the transaction that records completed files: the object of a file
    found closed there is deleted after that transaction has rolled back, never inside it."""
    try:
        yield
    except OrphanedObject as exc:
        storage_call(get_storage().delete, key=exc.key)
        raise


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
        # checked belongs to nobody, so it goes, as the abort meant it to; orphans_released
        # deletes it once the caller's transaction is over.
        raise OrphanedObject(
            f"Upload {media.media_id} is {media.status}.", key=media.object_key, details={"status": media.status}
        )


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
        if sum(p.size for p in parts) < 1:  # refused before assembly: the parts can be sent again
            raise ObjectMissing(
                "The parts at storage hold no bytes: a file has at least 1 byte; send its parts again.",
                details={"key": media.object_key, "size": 0, "minBytes": 1},
            )
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


def _check_stored_object(media: MediaUpload, obj: StoredObject | None, storage: StorageBackend, actor: str) -> None:
    if obj is None:
        raise ObjectMissing(
            f"No bytes are at storage for {media.object_key} yet.",
            details={"key": media.object_key, "mediaId": media.media_id},
        )
    if obj.size < 1:
        # A form POST's policy refuses an empty file on S3 (an S3-compatible server may not),
        # a PUT URL is signed for 1 byte or more; whatever let one through, it is never handed
        # to processing. It is removed, so the same URL (create-only) can send the real bytes.
        storage_call(storage.delete, key=media.object_key)
        raise ObjectMissing(
            f"Storage held an empty object for {media.object_key}: a file has at least 1 byte. "
            "It was removed; send the file again, then complete.",
            details={"key": media.object_key, "size": 0, "minBytes": 1},
        )
    if media.declared_size is not None and obj.size != media.declared_size:
        raise ObjectMissing(
            f"Storage holds {obj.size} bytes for {media.object_key}; {media.declared_size} were declared.",
            details={"key": media.object_key, "size": obj.size, "expectedSize": media.declared_size},
        )
    limit = tenant_max_bytes(tenant=media.submission.tenant, kind=media.kind)
    if obj.size > limit:
        _refuse_over_limit(media, size=obj.size, limit=limit, actor=actor)


def _refuse_over_limit(media: MediaUpload, *, size: int, limit: int, actor: str) -> None:
    """Closes the file (aborted, with why in its Event), then deletes its object: were it left
    pending, the URL that stored the object could store it again, and the limit would hold only
    as long as nobody completed at the right moment. A storage outage leaves the release to the
    expiry sweep (released_at stays empty); the answer is the 413 all the same."""
    details = {"maxBytes": limit, "size": size}
    media_close(media=media, status=MediaStatus.ABORTED, actor=actor, details={"reason": "too_large", **details})
    media.refresh_from_db()
    if media.status in (MediaStatus.ABORTED, MediaStatus.EXPIRED):
        try:
            media_release(media=media)
        except StorageUnavailable:
            logger.warning("upload %s: release after a refusal failed; the sweep retries", media.media_id)
    raise TooLarge(
        f"A {media.kind} may be at most {limit} bytes; storage holds {size}. "
        "This upload is closed; start the file again.",
        details={**details, "status": media.status},
    )
