"""Per-tenant caps on what is in flight: open uploads, the bytes they may still bring, and files
per submission. A tenant row's own value replaces the portal's default (settings
UPLOADS_DEFAULT_MAX_*); staff set it in the admin.

Checked when a file is initiated, last in the transaction that creates it, under a lock on the
tenant's row held to the commit: two initiates at once cannot both take the last place. Last, so
a tenant's initiates queue only for the two counts and the commit; other tenants' never wait
(8 threads initiating for one tenant on PostgreSQL, on a busy 2-core machine: 42 files/s, 98
without the check). The lock is FOR NO KEY UPDATE, which rows inserted with a foreign key to the
tenant (the initiate's own submission, API keys, upload links: FOR KEY SHARE) neither wait for
nor block. SQLite has no row locks; its IMMEDIATE transactions admit one writer at a time."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import BigIntegerField, Case, Count, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenants.models import Tenant
from uploads.errors import QuotaExceeded
from uploads.models import KeyTenant, MediaKind, MediaStatus, MediaUpload

CLOSED_FILE = (MediaStatus.ABORTED, MediaStatus.EXPIRED)


@dataclass(frozen=True)
class TenantCaps:
    max_open_uploads: int
    max_reserved_bytes: int
    max_files_per_submission: int


@dataclass(frozen=True)
class InFlight:
    open_uploads: int
    reserved_bytes: int


def tenant_caps(tenant: Tenant) -> TenantCaps:
    """The tenant's own caps where set (0 included: no new uploads), the portal's defaults elsewhere."""

    def cap(own: int | None, default: int) -> int:
        return default if own is None else own

    return TenantCaps(
        max_open_uploads=cap(tenant.max_open_uploads, settings.UPLOADS_DEFAULT_MAX_OPEN_UPLOADS),
        max_reserved_bytes=cap(tenant.max_reserved_bytes, settings.UPLOADS_DEFAULT_MAX_RESERVED_BYTES),
        max_files_per_submission=cap(
            tenant.max_files_per_submission, settings.UPLOADS_DEFAULT_MAX_FILES_PER_SUBMISSION
        ),
    )


def file_reservation(*, tenant: Tenant, kind: str, file_size: int | None) -> int:
    """What a file may still bring: its declared size, or its kind's limit, which storage
    enforces while the bytes of an undeclared size arrive."""
    return file_size if file_size is not None else _kind_limits(tenant)[kind]


def tenant_in_flight(*, tenant: Tenant, now: datetime | None = None) -> InFlight:
    """The tenant's open uploads (pending, not past their expiry) and the bytes they reserve.

    One query on the file table alone: the tenant is the first segment of every object key it
    owns, so no join with submissions is needed. A join's plan depends on fresh statistics, and
    on a table grown since its last ANALYZE (a new deployment, a load test) PostgreSQL chose a
    nested loop comparing every pending file with every submission of the tenant: 270 ms at
    1,000 of each, under the tenant's lock. It reads the tenant's open files alone, by the index
    uploads_media_open_by_tenant (pending files by their key's tenant and expiry), however many
    other tenants have open; by status and expiry it read every tenant's open files and dropped
    the others' by key prefix. A pending file of a submission that has just expired counts until
    the sweep closes it, in the same run."""
    limits = _kind_limits(tenant)
    undeclared = Case(
        When(kind=MediaKind.PHOTO, then=Value(limits[MediaKind.PHOTO])),
        default=Value(limits[MediaKind.AUDIO]),
        output_field=BigIntegerField(),
    )
    figures = (
        MediaUpload.objects.alias(key_tenant=KeyTenant("object_key"))
        .filter(key_tenant=tenant.id, status=MediaStatus.PENDING, expires_at__gt=now or timezone.now())
        .aggregate(
            open_uploads=Count("pk"),
            reserved_bytes=Coalesce(
                Sum(Coalesce("declared_size", undeclared), output_field=BigIntegerField()),
                Value(0),
                output_field=BigIntegerField(),
            ),
        )
    )
    return InFlight(open_uploads=figures["open_uploads"], reserved_bytes=int(figures["reserved_bytes"]))


def caps_check_initiate(*, tenant: Tenant, media: MediaUpload) -> None:
    """Raises QuotaExceeded if the file just created (`media`, its row inserted, not committed)
    passes one of the tenant's caps; the caller's transaction then rolls it back.

    Call it last in that transaction: it locks the tenant's row until the commit, so the lock is
    held for its two counts and the commit only. Each initiate counts while holding the lock and
    commits before releasing it, so each sees every file committed before it, its own included,
    and none can pass a cap however many run at once."""
    locked = Tenant.objects.select_for_update(no_key=True).get(pk=tenant.pk)  # fresh caps too
    caps = tenant_caps(locked)
    files = MediaUpload.objects.filter(submission_id=media.submission_id).exclude(status__in=CLOSED_FILE).count()
    if files > caps.max_files_per_submission:
        tracking_id = media.submission.tracking_id
        raise QuotaExceeded(
            f"Submission {tracking_id} has {files - 1} files, the most a submission of tenant "
            f"{tenant.id} may have; abort one or start another submission.",
            details={
                "cap": "maxFilesPerSubmission",
                "limit": caps.max_files_per_submission,
                "current": files - 1,
                "trackingId": tracking_id,
            },
        )
    in_flight = tenant_in_flight(tenant=locked)
    if in_flight.open_uploads > caps.max_open_uploads:
        current = in_flight.open_uploads - 1
        raise QuotaExceeded(
            f"Tenant {tenant.id} has {current} uploads open, its cap; finish or abort some first.",
            details={"cap": "maxOpenUploads", "limit": caps.max_open_uploads, "current": current},
        )
    wanted = file_reservation(tenant=locked, kind=media.kind, file_size=media.declared_size)
    if in_flight.reserved_bytes > caps.max_reserved_bytes:
        current = in_flight.reserved_bytes - wanted
        raise QuotaExceeded(
            f"Tenant {tenant.id}'s open uploads reserve {current} bytes; this file's {wanted} more "
            f"would pass its cap of {caps.max_reserved_bytes}. Finish or abort some first"
            + ("." if media.declared_size is not None else ", or declare the file's size."),
            details={
                "cap": "maxReservedBytes",
                "limit": caps.max_reserved_bytes,
                "current": current,
                "requested": wanted,
            },
        )


def _kind_limits(tenant: Tenant) -> dict[str, int]:
    # Imported here: uploads.services.media calls this module, and owns the size limits.
    from uploads.services.media import tenant_max_bytes

    return {kind: tenant_max_bytes(tenant=tenant, kind=kind) for kind in MediaKind.values}
