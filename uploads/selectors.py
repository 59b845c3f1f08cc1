"""Reads that go through the tenant: another tenant's id is answered exactly like a missing one.
A caller scoped to one artisan (an upload link's session) passes `artisan_id`, and another
artisan's ids are answered the same way."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from portal.prepared_queries import PreparedQuery, model_from_row
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


# The status GET and every call on one upload (signing parts above all) run these on each
# request: compiled once per process (portal/prepared_queries.py), each one query. media_get
# reads every column, so nothing of what it returns is deferred (a deferred attribute costs a
# query when read); the status reads what the status shows (converting the other columns,
# datetimes above all, took longer than the query).
_SUBMISSION_COLUMNS = [f.name for f in Submission._meta.concrete_fields]
_MEDIA_COLUMNS = [f.name for f in MediaUpload._meta.concrete_fields]
_TENANT_COLUMNS = [f.name for f in Tenant._meta.concrete_fields]
_STATUS_SUBMISSION_COLUMNS = [
    "id", "tracking_id", "tenant_id", "artisan_id", "stage", "stage_message", "catalog_id", "error_details",
    "updated_at",
]  # fmt: skip
_STATUS_MEDIA_COLUMNS = [
    "id", "media_id", "submission_id", "kind", "content_type", "declared_size", "object_key", "strategy",
    "part_count", "status", "size", "bytes_recorded",
]  # fmt: skip


def _status_query(*, scoped: bool) -> PreparedQuery:
    def build(tenant_id: str, tracking_id: str, artisan_id: str = "") -> QuerySet[Submission, Any]:
        rows = Submission.objects.filter(tenant_id=tenant_id, tracking_id=tracking_id)
        rows = _scoped(rows, artisan_id if scoped else None, "artisan_id")
        # One row per file (a submission without one: one row of NULLs for it), in the order of
        # the files' own Meta.ordering, as prefetching them gave.
        return rows.order_by("media__created_at", "media__id").values_list(
            *_STATUS_SUBMISSION_COLUMNS, *(f"media__{name}" for name in _STATUS_MEDIA_COLUMNS)
        )

    return PreparedQuery(
        build, params=("tenant_id", "tracking_id", "artisan_id") if scoped else ("tenant_id", "tracking_id")
    )


# What signing part URLs reads of a file and its submission (uploads.services.media_sign_parts):
# SQLite's driver spends time on every column a query returns, and a file with its submission
# and tenant is 46 of them.
_SIGNING_MEDIA_COLUMNS = [
    "id", "media_id", "submission_id", "strategy", "status", "expires_at", "declared_size", "part_size",
    "part_count", "object_key", "multipart_upload_id",
]  # fmt: skip
_SIGNING_SUBMISSION_COLUMNS = ["id", "tracking_id", "tenant_id", "artisan_id", "stage"]


def _media_query(*, scoped: bool, columns: list[str], submission_columns: list[str], tenant: bool) -> PreparedQuery:
    def build(tenant_id: str, media_id: str, artisan_id: str = "") -> QuerySet[MediaUpload, Any]:
        rows = MediaUpload.objects.filter(submission__tenant_id=tenant_id, media_id=media_id)
        rows = _scoped(rows, artisan_id if scoped else None, "submission__artisan_id")
        return rows.order_by().values_list(
            *columns,
            *(f"submission__{name}" for name in submission_columns),
            *(f"submission__tenant__{name}" for name in (_TENANT_COLUMNS if tenant else ())),
        )

    return PreparedQuery(build, params=("tenant_id", "media_id", "artisan_id") if scoped else ("tenant_id", "media_id"))


_STATUS = {False: _status_query(scoped=False), True: _status_query(scoped=True)}
_MEDIA = {
    scoped: _media_query(scoped=scoped, columns=_MEDIA_COLUMNS, submission_columns=_SUBMISSION_COLUMNS, tenant=True)
    for scoped in (False, True)
}
_MEDIA_TO_SIGN = {
    scoped: _media_query(
        scoped=scoped,
        columns=_SIGNING_MEDIA_COLUMNS,
        submission_columns=_SIGNING_SUBMISSION_COLUMNS,
        tenant=False,
    )
    for scoped in (False, True)
}


def _scope_values(artisan_id: str | None) -> dict[str, str]:
    return {} if artisan_id is None else {"artisan_id": artisan_id}


@dataclass(frozen=True)
class SubmissionFiles:
    submission: Submission
    files: list[MediaUpload]  # in the order of MediaUpload.Meta.ordering, each with .submission set


def submission_status(*, tenant: Tenant, tracking_id: str, artisan_id: str | None = None) -> SubmissionFiles:
    """The submission with its files and the bytes recorded for each (kept on the file): one
    query, whatever the number of parts. Only what the status shows is read; any other
    attribute is deferred, read with a query of its own if ever used."""
    rows = _STATUS[artisan_id is not None].rows(
        tenant_id=tenant.pk, tracking_id=tracking_id, **_scope_values(artisan_id)
    )
    if not rows:
        raise NotFound(f"No submission {tracking_id!r}.", details={"trackingId": tracking_id})
    width = len(_STATUS_SUBMISSION_COLUMNS)
    submission = model_from_row(Submission, rows[0][:width], attnames=_STATUS_SUBMISSION_COLUMNS)
    files = []
    for row in rows:
        if row[width] is None:  # the NULLs of a submission without files
            continue
        media = model_from_row(MediaUpload, row[width:], attnames=_STATUS_MEDIA_COLUMNS)
        MediaUpload.submission.field.set_cached_value(media, submission)
        files.append(media)
    return SubmissionFiles(submission=submission, files=files)


def media_get(*, tenant: Tenant, media_id: str, artisan_id: str | None = None) -> MediaUpload:
    """The file with its submission and the submission's tenant: one query."""
    rows = _MEDIA[artisan_id is not None].rows(tenant_id=tenant.pk, media_id=media_id, **_scope_values(artisan_id))
    if not rows:
        raise NotFound(f"No upload {media_id!r}.", details={"mediaId": media_id})
    [row] = rows
    media_end = len(_MEDIA_COLUMNS)
    submission_end = media_end + len(_SUBMISSION_COLUMNS)
    media = model_from_row(MediaUpload, row[:media_end])
    submission = model_from_row(Submission, row[media_end:submission_end])
    Submission.tenant.field.set_cached_value(submission, model_from_row(Tenant, row[submission_end:]))
    MediaUpload.submission.field.set_cached_value(media, submission)
    return media


def media_to_sign(*, tenant: Tenant, media_id: str, artisan_id: str | None = None) -> MediaUpload:
    """media_get for signing part URLs, the hottest call on an upload: one query for what
    uploads.services.media_sign_parts reads of the file and its submission; any other attribute
    is deferred (a query of its own if ever read). The submission's tenant is `tenant`, the
    caller's, which the query matched."""
    rows = _MEDIA_TO_SIGN[artisan_id is not None].rows(
        tenant_id=tenant.pk, media_id=media_id, **_scope_values(artisan_id)
    )
    if not rows:
        raise NotFound(f"No upload {media_id!r}.", details={"mediaId": media_id})
    [row] = rows
    width = len(_SIGNING_MEDIA_COLUMNS)
    media = model_from_row(MediaUpload, row[:width], attnames=_SIGNING_MEDIA_COLUMNS)
    submission = model_from_row(Submission, row[width:], attnames=_SIGNING_SUBMISSION_COLUMNS)
    Submission.tenant.field.set_cached_value(submission, tenant)
    MediaUpload.submission.field.set_cached_value(media, submission)
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
