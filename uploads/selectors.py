"""Reads that go through the tenant: another tenant's id is answered exactly like a missing one.
A caller scoped to one artisan (an upload link's session) passes `artisan_id`, and another
artisan's ids are answered the same way."""

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from tenants.models import Tenant
from uploads.errors import NotFound
from uploads.models import MediaUpload, Stage, Strategy, Submission

M = TypeVar("M", bound=Model)

# Where a submission rests: nothing more happens to it unless staff act.
FINAL_STAGES = (Stage.COMPLETED, Stage.FAILED, Stage.ABORTED, Stage.EXPIRED)


def _scoped(queryset: QuerySet[M], artisan_id: str | None, path: str) -> QuerySet[M]:
    return queryset if artisan_id is None else queryset.filter(**{path: artisan_id})


def submission_get(*, tenant: Tenant, tracking_id: str, artisan_id: str | None = None) -> Submission:
    submission = _scoped(
        Submission.objects.filter(tenant=tenant, tracking_id=tracking_id), artisan_id, "artisan_id"
    ).first()
    if submission is None:
        raise NotFound(f"No submission {tracking_id!r}.", details={"trackingId": tracking_id})
    return submission


def media_bytes_received(media: MediaUpload) -> int:
    """All of a finished file; of one in flight, what its client has recorded."""
    return media.size if media.size is not None else media.bytes_recorded


def media_percent_received(media: MediaUpload) -> int | None:
    """None when nobody knows the file's size yet (an open upload before completion)."""
    total = media.size or media.declared_size
    return min(100, round(100 * media_bytes_received(media) / total)) if total else None


def submission_status(*, tenant: Tenant, tracking_id: str, artisan_id: str | None = None) -> Submission:
    """The submission with its files and the bytes recorded for each (kept on the file): two
    queries, whatever the number of parts."""
    submission = (
        _scoped(Submission.objects.filter(tenant=tenant, tracking_id=tracking_id), artisan_id, "artisan_id")
        .prefetch_related("media")
        .first()
    )
    if submission is None:
        raise NotFound(f"No submission {tracking_id!r}.", details={"trackingId": tracking_id})
    return submission


def media_get(*, tenant: Tenant, media_id: str, artisan_id: str | None = None) -> MediaUpload:
    media = (
        _scoped(
            MediaUpload.objects.filter(submission__tenant=tenant, media_id=media_id),
            artisan_id,
            "submission__artisan_id",
        )
        .select_related("submission", "submission__tenant")
        .first()
    )
    if media is None:
        raise NotFound(f"No upload {media_id!r}.", details={"mediaId": media_id})
    return media


def media_get_multipart(*, tenant: Tenant, upload_id: str, key: str, artisan_id: str | None = None) -> MediaUpload:
    """A multipart upload named the way S3 clients (Uppy) name it, by upload id and key. Both
    must belong to one upload of this caller's: a guessed, foreign or mismatched pair is
    answered exactly like a missing one, so a client can only ever touch its own uploads."""
    media = (
        _scoped(
            MediaUpload.objects.filter(
                submission__tenant=tenant, object_key=key, strategy=Strategy.MULTIPART, multipart_upload_id=upload_id
            ),
            artisan_id,
            "submission__artisan_id",
        )
        .select_related("submission", "submission__tenant")
        .first()
    )
    if media is None or not upload_id:
        raise NotFound("No such multipart upload.", details={"uploadId": upload_id, "key": key})
    return media


def submissions_stuck(queryset: QuerySet[Submission], *, now: datetime | None = None) -> QuerySet[Submission]:
    """Short of a final stage with no sign of life for ADMIN_STUCK_MINUTES: what staff look at
    first. Served by the (stage, last_progress_at) index."""
    since = (now or timezone.now()) - timedelta(minutes=settings.ADMIN_STUCK_MINUTES)
    return queryset.exclude(stage__in=FINAL_STAGES).filter(last_progress_at__lt=since)


def submissions_matching(*, query: str, tenant_ids: Collection[str] | None) -> QuerySet[Submission]:
    """What staff paste from a ticket: a tracking id, a media id, an object key or an artisan id.
    `tenant_ids` None means every tenant (superusers). Exact matches only, each on a unique or
    indexed column, so a search costs the same whatever the table holds."""
    query = query.strip()
    rows = Submission.objects.all() if tenant_ids is None else Submission.objects.filter(tenant_id__in=tenant_ids)
    if not query:
        return rows.none()
    media = MediaUpload.objects.filter(Q(media_id=query) | Q(object_key=query)).values("submission_id")
    return rows.filter(Q(tracking_id=query) | Q(artisan_id=query) | Q(pk__in=media)).order_by("-created_at")
