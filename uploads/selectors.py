"""Reads that go through the tenant: another tenant's id is answered exactly like a missing one."""

from django.db.models import Prefetch, Sum

from tenants.models import Tenant
from uploads.errors import NotFound
from uploads.models import MediaUpload, Submission


def submission_get(*, tenant: Tenant, tracking_id: str) -> Submission:
    submission = Submission.objects.filter(tenant=tenant, tracking_id=tracking_id).first()
    if submission is None:
        raise NotFound(f"No submission {tracking_id!r}.", details={"trackingId": tracking_id})
    return submission


def submission_status(*, tenant: Tenant, tracking_id: str) -> Submission:
    """The submission with its files and the bytes recorded for each: two queries, whatever
    the number of parts."""
    files = MediaUpload.objects.annotate(recorded_bytes=Sum("parts__size")).order_by("created_at")
    submission = (
        Submission.objects.filter(tenant=tenant, tracking_id=tracking_id)
        .prefetch_related(Prefetch("media", queryset=files))
        .first()
    )
    if submission is None:
        raise NotFound(f"No submission {tracking_id!r}.", details={"trackingId": tracking_id})
    return submission


def media_get(*, tenant: Tenant, media_id: str) -> MediaUpload:
    media = (
        MediaUpload.objects.select_related("submission", "submission__tenant")
        .filter(submission__tenant=tenant, media_id=media_id)
        .first()
    )
    if media is None:
        raise NotFound(f"No upload {media_id!r}.", details={"mediaId": media_id})
    return media
