"""Services for one file's journey into storage: initiate, sign, record. Where its bytes stand
(progress, resume) is in uploads.services.progress, completing it in uploads.services.completion,
closing it (abort, expiry) in uploads.services.closing.

Storage calls happen outside database transactions (a slow S3 must not hold row locks); the
database then changes with a conditional UPDATE, so a repeat or a concurrent call is harmless."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenants.models import Tenant
from uploads import selectors
from uploads.errors import (
    ArtisanMismatch,
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
    TooLarge,
    UploadClosed,
)
from uploads.keys import build_object_key, validate_artisan_id
from uploads.media_types import resolve_media_type
from uploads.models import (
    Event,
    MediaKind,
    MediaStatus,
    MediaUpload,
    Stage,
    Strategy,
    Submission,
    UploadPart,
    new_media_id,
    new_tracking_id,
)
from uploads.plan import PartPlan, plan_parts
from uploads.services.caps import caps_check_initiate
from uploads.services.mirror import mirror_media, mirror_submission
from uploads.services.stages import submission_advance
from uploads.storage import (
    MAX_SINGLE_PUT_BYTES,
    SignedPost,
    SignedRequest,
    StorageError,
    get_storage,
)

P = ParamSpec("P")
R = TypeVar("R")

OPEN_STAGES = (Stage.INITIATED, Stage.UPLOADING)


@dataclass(frozen=True)
class InitiatedUpload:
    media: MediaUpload
    plan: PartPlan | None
    upload: SignedRequest | None  # the single PUT; multipart parts are signed on demand
    form: SignedPost | None = None  # instead of `upload`, for a single upload of undeclared size


@dataclass(frozen=True)
class SignedPart:
    part_number: int
    size: int | None  # None: an open upload's part, any size up to 5 GiB
    request: SignedRequest


def tenant_max_bytes(*, tenant: Tenant, kind: str) -> int:
    if kind == MediaKind.PHOTO:
        return tenant.max_photo_bytes or settings.UPLOADS_DEFAULT_MAX_PHOTO_BYTES
    return tenant.max_audio_bytes or settings.UPLOADS_DEFAULT_MAX_AUDIO_BYTES


def media_plan(media: MediaUpload) -> PartPlan | None:
    """A multipart upload's part plan; None for an open one (the client chose its own part size,
    as stock Uppy does), whose parts are judged at completion by the rules of S3 instead."""
    assert media.strategy == Strategy.MULTIPART
    if media.part_size and media.part_count and media.declared_size:
        return PartPlan(file_size=media.declared_size, part_size=media.part_size, part_count=media.part_count)
    return None


def media_initiate(
    *,
    tenant: Tenant,
    artisan_id: str,
    content_type: str,
    file_size: int | None,
    tracking_id: str | None = None,
    part_size: int | None = None,
    allow_multipart: bool = True,
    open_multipart: bool = False,
    form_post: bool = False,
    artisan_scope: str | None = None,
    actor: str,
) -> InitiatedUpload:
    """Adds one file to a new or existing submission. Multipart when the file is above the
    threshold or the client proposes a part size; the part plan is fixed here, for good.

    For clients that declare no size (stock Uppy, the v1 initiate without fileSize):
    `open_multipart` starts a multipart upload without a plan, its parts checked at completion
    (contiguous, S3's minimum size, the tenant's limit); a single upload without a size is always
    signed as a form POST whose policy carries 1 byte to the tenant's limit, so storage refuses
    an empty or larger file while it arrives (`form_post` asks for that form whatever the size).

    `artisan_scope`: the one artisan the caller acts for (an upload link's session). It starts
    files for that artisan only, and another artisan's trackingId is answered as missing."""
    validate_artisan_id(artisan_id)
    if artisan_scope is not None and artisan_id != artisan_scope:
        raise ArtisanMismatch("This session uploads for its own artisan only.", details={"field": "artisanId"})
    media_type = resolve_media_type(content_type)
    limit = tenant_max_bytes(tenant=tenant, kind=media_type.kind)
    if file_size is not None:
        if file_size < 1:
            raise InvalidInput("fileSize must be at least 1 byte.", details={"field": "fileSize"})
        if file_size > limit:
            raise TooLarge(
                f"A {media_type.kind} may be at most {limit} bytes.", details={"field": "fileSize", "maxBytes": limit}
            )
    if open_multipart and (file_size is not None or part_size is not None or form_post):
        raise InvalidInput("An open multipart upload has no size and no part plan.", details={"field": "fileSize"})
    multipart = open_multipart or (
        allow_multipart
        and file_size is not None
        and (part_size is not None or file_size > settings.UPLOADS_MULTIPART_THRESHOLD)
    )
    if not multipart and file_size is not None and file_size > MAX_SINGLE_PUT_BYTES:
        raise TooLarge("A single PUT takes at most 5 GiB; use a multipart upload.", details={"field": "fileSize"})
    plan = plan_parts(file_size=file_size, part_size=part_size) if multipart and file_size is not None else None

    if tracking_id is not None:
        existing = selectors.submission_get(tenant=tenant, tracking_id=tracking_id, artisan_id=artisan_scope)
        _check_adding_to(existing, artisan_id)
    tracking = tracking_id or new_tracking_id()
    media_id = new_media_id()
    key = build_object_key(
        tenant_id=tenant.id, artisan_id=artisan_id, tracking_id=tracking, media_id=media_id, ext=media_type.ext
    )
    storage = get_storage()
    upload_id = (
        storage_call(storage.create_multipart, key=key, content_type=media_type.content_type) if multipart else ""
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            if tracking_id is None:
                submission = Submission.objects.create(tenant=tenant, tracking_id=tracking, artisan_id=artisan_id)
                Event.objects.create(submission=submission, actor=actor, action="submission.initiated")
                mirror_submission(submission)
            else:
                submission = Submission.objects.select_for_update().get(tenant=tenant, tracking_id=tracking_id)
                _check_adding_to(submission, artisan_id)
            media = MediaUpload.objects.create(
                media_id=media_id,
                submission=submission,
                kind=media_type.kind,
                content_type=media_type.content_type,
                declared_size=file_size,
                object_key=key,
                strategy=Strategy.MULTIPART if multipart else Strategy.SINGLE,
                multipart_upload_id=upload_id,
                part_size=plan.part_size if plan else None,
                part_count=plan.part_count if plan else None,
                expires_at=now + timedelta(seconds=settings.UPLOADS_UPLOAD_EXPIRY_SECONDS),
            )
            Event.objects.create(
                submission=submission,
                media=media,
                actor=actor,
                action="media.initiated",
                details={"kind": media.kind, "strategy": media.strategy, "size": file_size},
            )
            mirror_media(media.pk)
            caps_check_initiate(tenant=tenant, media=media)  # last: it locks the tenant until commit
    except BaseException:
        if upload_id:
            storage.abort_multipart(key=key, upload_id=upload_id)
        raise
    upload = form = None
    if not multipart and (form_post or file_size is None):
        # S3 cannot bound a PUT whose Content-Length it was not signed for; a POST policy's
        # content-length-range it enforces itself, so the tenant's limit holds while bytes arrive.
        form = storage.presign_post(
            key=key,
            content_type=media_type.content_type,
            max_bytes=min(limit, MAX_SINGLE_PUT_BYTES),
            expires_in=settings.UPLOADS_URL_EXPIRY_SECONDS,
        )
    elif not multipart:
        upload = storage.presign_put(
            key=key,
            content_type=media_type.content_type,
            size=file_size,
            expires_in=settings.UPLOADS_URL_EXPIRY_SECONDS,
        )
    return InitiatedUpload(media=media, plan=plan, upload=upload, form=form)


def _check_adding_to(submission: Submission, artisan_id: str) -> None:
    if submission.artisan_id != artisan_id:
        raise Conflict(
            "This trackingId belongs to another artisanId.",
            details={"field": "artisanId", "trackingId": submission.tracking_id},
        )
    if submission.stage not in OPEN_STAGES:
        raise Conflict(
            f"Submission {submission.tracking_id} is {submission.stage} and takes no more files.",
            details={"trackingId": submission.tracking_id, "stage": submission.stage},
        )


def media_sign_parts(*, media: MediaUpload, part_numbers: Sequence[int]) -> list[SignedPart]:
    """Short-lived URLs for the parts a client is about to send, each bound to its exact size:
    never the whole plan up front, so a leaked batch is worth little and soon worthless.

    An open upload's parts (no plan) are signed for any size up to 5 GiB: a client that picks its
    own part size, such as stock Uppy, may send any part number from 1 to 10,000."""
    plan = _open_multipart_plan(media)
    if not 1 <= len(part_numbers) <= settings.UPLOADS_MAX_SIGN_BATCH:
        raise InvalidInput(
            f"Ask for 1 to {settings.UPLOADS_MAX_SIGN_BATCH} part numbers at a time.", details={"field": "partNumbers"}
        )
    part_count = plan.part_count if plan else settings.UPLOADS_MAX_PARTS
    invalid = sorted({n for n in part_numbers if not 1 <= n <= part_count})
    if invalid or len(set(part_numbers)) != len(part_numbers):
        raise InvalidInput(
            f"Part numbers must be distinct and between 1 and {part_count}.",
            details={"field": "partNumbers", "invalidPartNumbers": invalid, "numParts": part_count},
        )
    remaining = int((media.expires_at - timezone.now()).total_seconds())
    expires_in = max(1, min(settings.UPLOADS_PART_URL_EXPIRY_SECONDS, remaining))
    parts = [(n, plan.size_of(n) if plan else None) for n in part_numbers]
    signed = get_storage().presign_parts(
        key=media.object_key, upload_id=media.multipart_upload_id, parts=parts, expires_in=expires_in
    )
    return [
        SignedPart(part_number=n, size=size, request=request) for (n, size), request in zip(parts, signed, strict=True)
    ]


def media_record_part(*, media: MediaUpload, part_number: int, size: int, etag: str, actor: str) -> UploadPart:
    """The client's account of a part it sent. Bookkeeping for triage only: completion trusts
    storage's ListParts, never this."""
    plan = _open_multipart_plan(media)
    part_count = plan.part_count if plan else settings.UPLOADS_MAX_PARTS
    if not 1 <= part_number <= part_count:
        raise NotFound(f"Upload {media.media_id} has no part {part_number}.", details={"partNumber": part_number})
    if plan is not None and size != plan.size_of(part_number):
        raise InvalidInput(
            f"Part {part_number} is {plan.size_of(part_number)} bytes by the plan.",
            details={"field": "size", "expected": plan.size_of(part_number)},
        )
    now = timezone.now()
    with transaction.atomic():
        # Rows are locked submission first, then file, the order closing a submission takes them.
        # One record per file at a time, so its counters and version add up when parts are
        # recorded concurrently.
        Submission.objects.filter(pk=media.submission_id).update(last_progress_at=now)
        list(MediaUpload.objects.select_for_update().filter(pk=media.pk).values_list("pk"))
        part = UploadPart.objects.filter(media=media, part_number=part_number).first()
        if part is not None and (part.size, part.etag) == (size, etag):
            return part  # a repeat of the same record: nothing changed
        added, grown = (1, size) if part is None else (0, size - part.size)
        if part is None:
            part = UploadPart.objects.create(media=media, part_number=part_number, size=size, etag=etag)
        else:
            part.size, part.etag = size, etag
            part.save(update_fields=["size", "etag", "updated_at"])
        MediaUpload.objects.filter(pk=media.pk).update(
            parts_recorded=F("parts_recorded") + added,
            bytes_recorded=F("bytes_recorded") + grown,
            version=F("version") + 1,
            updated_at=now,
        )
        submission_uploading(media.submission_id, actor)
        mirror_media(media.pk)
    return part


def submission_uploading(submission_id: int, actor: str) -> None:
    """The first sign of bytes moves a submission from initiated to uploading, once. Runs in
    the caller's transaction, beside the change that is that sign."""
    submission_advance(
        submission_id=submission_id,
        from_stages=[Stage.INITIATED],
        to=Stage.UPLOADING,
        message="Receiving files.",
        actor=actor,
        action="submission.uploading",
    )


def _open_multipart_plan(media: MediaUpload) -> PartPlan | None:
    """The plan of a multipart upload that still takes parts (None: an open upload, no plan)."""
    if media.strategy != Strategy.MULTIPART:
        raise Conflict(
            f"Upload {media.media_id} is a single PUT and has no parts.", details={"strategy": media.strategy}
        )
    require_pending(media)
    if media.expires_at <= timezone.now():
        raise UploadClosed(f"Upload {media.media_id} has expired.", details={"status": "expired"})
    return media_plan(media)


def require_pending(media: MediaUpload) -> None:
    if media.status != MediaStatus.PENDING:
        raise UploadClosed(f"Upload {media.media_id} is {media.status}.", details={"status": media.status})
    # A file the sweep has not reached yet still belongs to a closed submission.
    stage = media.submission.stage
    if stage in (Stage.EXPIRED, Stage.ABORTED):
        raise UploadClosed(
            f"Submission {media.submission.tracking_id} is {stage}.",
            details={"status": media.status, "submissionStage": stage},
        )


def storage_call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Storage outages become a clear 503 instead of a 500."""
    try:
        return fn(*args, **kwargs)
    except StorageError as exc:
        raise StorageUnavailable("Storage is unavailable; try again shortly.", details={"reason": str(exc)}) from exc
