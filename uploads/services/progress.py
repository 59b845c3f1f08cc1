"""Where a file's bytes stand, by storage's own account (ListParts, HEAD), and what a client
needs to resume: the parts still missing and fresh URLs for them."""

from dataclasses import dataclass, field, replace

from django.conf import settings
from django.utils import timezone

from uploads.errors import UploadClosed
from uploads.models import MediaStatus, MediaUpload, Strategy
from uploads.services.media import SignedPart, media_plan, media_sign_parts, storage_call
from uploads.storage import StoredPart, UploadNotFound, get_storage


@dataclass(frozen=True)
class UploadProgress:
    media: MediaUpload
    bytes_uploaded: int
    completed_parts: list[StoredPart]
    pending_parts: list[int]
    part_urls: list[SignedPart] = field(default_factory=list)


def media_progress(*, media: MediaUpload, sign_pending: int = 0) -> UploadProgress:
    """Where the bytes stand, by storage's account (all pages of ListParts), and, if asked,
    fresh URLs for the first `sign_pending` missing parts: all a client needs to resume."""
    progress = _progress_at_storage(media)
    if sign_pending and progress.pending_parts:
        if media.strategy == Strategy.SINGLE:
            urls = _sign_single_put(media)
        else:
            urls = media_sign_parts(media=media, part_numbers=progress.pending_parts[:sign_pending])
        progress = replace(progress, part_urls=urls)
    return progress


def _sign_single_put(media: MediaUpload) -> list[SignedPart]:
    """A fresh URL for a single PUT whose URL the client lost or let expire: its one part. Only
    for a declared size, to which the URL is bound; never beyond the upload's own expiry."""
    if media.declared_size is None:
        return []
    remaining = int((media.expires_at - timezone.now()).total_seconds())
    if remaining <= 0:
        raise UploadClosed(f"Upload {media.media_id} has expired.", details={"status": "expired"})
    request = get_storage().presign_put(
        key=media.object_key,
        content_type=media.content_type,
        size=media.declared_size,
        expires_in=max(1, min(settings.UPLOADS_URL_EXPIRY_SECONDS, remaining)),
    )
    return [SignedPart(part_number=1, size=media.declared_size, request=request)]


def _progress_at_storage(media: MediaUpload) -> UploadProgress:
    if media.status == MediaStatus.UPLOADED:
        return UploadProgress(media=media, bytes_uploaded=media.size or 0, completed_parts=[], pending_parts=[])
    if media.status != MediaStatus.PENDING:
        return UploadProgress(media=media, bytes_uploaded=0, completed_parts=[], pending_parts=[])
    storage = get_storage()
    if media.strategy == Strategy.SINGLE:
        # A single PUT is a one-part upload: part 1 is pending until the whole object is stored.
        obj = storage_call(storage.head, key=media.object_key)
        done = obj is not None and media.declared_size in (None, obj.size)
        return UploadProgress(
            media=media,
            bytes_uploaded=obj.size if obj else 0,
            completed_parts=[StoredPart(part_number=1, size=obj.size, etag=obj.etag)] if obj and done else [],
            pending_parts=[] if done else [1],
        )
    plan = media_plan(media)
    try:
        stored = storage_call(storage.list_parts, key=media.object_key, upload_id=media.multipart_upload_id)
    except UploadNotFound:
        # Completed at storage but the response was lost before we recorded it, or aborted.
        obj = storage_call(storage.head, key=media.object_key)
        done = obj is not None and (plan is None or obj.size == plan.file_size)
        pending = [] if done or plan is None else list(range(1, plan.part_count + 1))
        return UploadProgress(
            media=media, bytes_uploaded=obj.size if done and obj else 0, completed_parts=[], pending_parts=pending
        )
    if plan is None:
        # No plan, so nothing is known to be missing: the client that chose the parts knows.
        return UploadProgress(
            media=media, bytes_uploaded=sum(p.size for p in stored), completed_parts=stored, pending_parts=[]
        )
    good = [p for p in stored if 1 <= p.part_number <= plan.part_count and p.size == plan.size_of(p.part_number)]
    good_numbers = {p.part_number for p in good}
    return UploadProgress(
        media=media,
        bytes_uploaded=sum(p.size for p in good),
        completed_parts=good,
        pending_parts=[n for n in range(1, plan.part_count + 1) if n not in good_numbers],
    )
