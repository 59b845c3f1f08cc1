"""Per-tenant caps on what is in flight: open uploads, the bytes they may still bring, and files
per submission. A tenant row's own value replaces the portal's default (settings
UPLOADS_DEFAULT_MAX_*); staff set it in the admin.

Checked when a file is initiated, first in the transaction that creates it, under a lock on
the tenant's row: two initiates at once cannot both take the last place, and one tenant's
initiates queue for a few milliseconds each while other tenants' run freely. The lock is
PostgreSQL's FOR NO KEY UPDATE, which rows inserted with a foreign key to the tenant (API keys,
upload links, submissions: FOR KEY SHARE) neither wait for nor block. SQLite has no row locks;
its IMMEDIATE transactions admit one writer at a time, which serializes initiates already."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import BigIntegerField, Case, Count, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from tenants.models import Tenant
from uploads.errors import QuotaExceeded
from uploads.models import MediaKind, MediaStatus, MediaUpload, Stage

CLOSED_FILE = (MediaStatus.ABORTED, MediaStatus.EXPIRED)
CLOSED_SUBMISSION = (Stage.ABORTED, Stage.EXPIRED)


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
    """The tenant's open uploads (pending, not past their expiry, in a submission still open to
    them) and the bytes they reserve, in one query."""
    limits = _kind_limits(tenant)
    undeclared = Case(
        When(kind=MediaKind.PHOTO, then=Value(limits[MediaKind.PHOTO])),
        default=Value(limits[MediaKind.AUDIO]),
        output_field=BigIntegerField(),
    )
    figures = (
        MediaUpload.objects.filter(
            submission__tenant=tenant, status=MediaStatus.PENDING, expires_at__gt=now or timezone.now()
        )
        .exclude(submission__stage__in=CLOSED_SUBMISSION)
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


def caps_check_initiate(*, tenant: Tenant, tracking_id: str | None, kind: str, file_size: int | None) -> None:
    """Raises QuotaExceeded if one more file of this kind and size (in this submission, or a new
    one) would pass one of the tenant's caps. Call it inside the transaction that creates the file,
    before the file's row: the tenant's row stays locked until that transaction ends."""
    locked = Tenant.objects.select_for_update(no_key=True).get(pk=tenant.pk)  # fresh caps too
    caps = tenant_caps(locked)
    if tracking_id is not None:
        files = (
            MediaUpload.objects.filter(submission__tenant=tenant, submission__tracking_id=tracking_id)
            .exclude(status__in=CLOSED_FILE)
            .count()
        )
        if files + 1 > caps.max_files_per_submission:
            raise QuotaExceeded(
                f"Submission {tracking_id} has {files} files, the most a submission of tenant "
                f"{tenant.id} may have; abort one or start another submission.",
                details={
                    "cap": "maxFilesPerSubmission",
                    "limit": caps.max_files_per_submission,
                    "current": files,
                    "trackingId": tracking_id,
                },
            )
    in_flight = tenant_in_flight(tenant=locked)
    if in_flight.open_uploads + 1 > caps.max_open_uploads:
        raise QuotaExceeded(
            f"Tenant {tenant.id} has {in_flight.open_uploads} uploads open, its cap; finish or abort some first.",
            details={"cap": "maxOpenUploads", "limit": caps.max_open_uploads, "current": in_flight.open_uploads},
        )
    wanted = file_reservation(tenant=locked, kind=kind, file_size=file_size)
    if in_flight.reserved_bytes + wanted > caps.max_reserved_bytes:
        raise QuotaExceeded(
            f"Tenant {tenant.id}'s open uploads reserve {in_flight.reserved_bytes} bytes; this file's "
            f"{wanted} more would pass its cap of {caps.max_reserved_bytes}. Finish or abort some first"
            + ("." if file_size is not None else ", or declare the file's size."),
            details={
                "cap": "maxReservedBytes",
                "limit": caps.max_reserved_bytes,
                "current": in_flight.reserved_bytes,
                "requested": wanted,
            },
        )


def _kind_limits(tenant: Tenant) -> dict[str, int]:
    # Imported here: uploads.services.media calls this module, and owns the size limits.
    from uploads.services.media import tenant_max_bytes

    return {kind: tenant_max_bytes(tenant=tenant, kind=kind) for kind in MediaKind.values}
