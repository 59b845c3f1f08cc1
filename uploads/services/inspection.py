"""Staff triage reads storage itself: a preview of a finished file, and storage's live account
of one file beside the database's. Nothing here writes a row or changes what storage holds, so
staff may look as often as they like; and storage's failures are answers too (the panel says
"unreachable" instead of the page failing), because a ticket about a stuck upload often is one
about storage."""

import logging
from dataclasses import dataclass
from typing import Literal

from django.conf import settings

from uploads.errors import StorageUnavailable
from uploads.models import MediaStatus, MediaUpload, Strategy, UploadPart
from uploads.services.media import media_plan, storage_call
from uploads.storage import StorageBackend, StorageError, StoredObject, StoredPart, UploadNotFound, get_storage

logger = logging.getLogger(__name__)

PartState = Literal["same", "only in storage", "only in database", "differs"]
ViewKind = Literal["parts", "object"]

# What the database says of storage's copy, and what storage answers (FieldComparison values).
PRESENT, ABSENT = "present", "absent"
OPEN, RELEASED, AWAITING_RELEASE = "open", "released", "awaiting release"
STORED, NOT_YET = "stored", "not yet stored"


@dataclass(frozen=True)
class PartComparison:
    """One part number as each side has it; ETags without their quotes (S3 quotes them, clients
    often strip them), None where that side has no such part."""

    part_number: int
    db_size: int | None
    db_etag: str | None
    storage_size: int | None
    storage_etag: str | None
    state: PartState


@dataclass(frozen=True)
class FieldComparison:
    """One fact about the file as each side tells it (the object's size, ETag, whether the
    multipart upload is still open...); `same` False is a difference to look at."""

    name: str
    database: str | int | None
    storage: str | int | None
    same: bool


@dataclass(frozen=True)
class StorageView:
    """Storage's account of one file, fetched live. `reachable` False: storage did not answer
    (or refused), `error` says why and nothing else is known. `error` with `reachable` True:
    storage answered that the multipart upload of a pending file is gone. `parts` holds every
    part number either side knows (up to 10,000; one query for the database's); `missing_parts`
    the planned parts storage does not hold yet, which is progress, not a difference."""

    kind: ViewKind
    reachable: bool
    error: str = ""
    parts: tuple[PartComparison, ...] = ()
    missing_parts: tuple[int, ...] = ()
    stored_object: StoredObject | None = None  # HEAD's answer, when the object was asked about
    fields: tuple[FieldComparison, ...] = ()
    differences: int = 0


def media_preview_url(*, media: MediaUpload) -> str | None:
    """A GET URL valid ADMIN_PREVIEW_SECONDS for a finished file, so the browser fetches the
    bytes from storage itself; short-lived because admin pages are shared and screenshotted.
    None for a file that is not (or no longer) stored as the portal checked it, or when storage
    cannot sign. The caller has already scoped `media` to the staff member's tenants."""
    if media.status != MediaStatus.UPLOADED:
        return None
    try:
        signed = get_storage().presign_get(
            key=media.object_key, expires_in=settings.ADMIN_PREVIEW_SECONDS, content_type=media.content_type
        )
    except StorageError:
        logger.warning("Could not sign a preview of %s", media.media_id, exc_info=True)
        return None
    return signed.url


def media_storage_view(*, media: MediaUpload) -> StorageView:
    """ListParts for a multipart upload that has not finished (pending, or closed with storage
    perhaps still holding its parts), HEAD for a single PUT and any finished file."""
    kind: ViewKind = (
        "parts" if media.strategy == Strategy.MULTIPART and media.status != MediaStatus.UPLOADED else "object"
    )
    storage = get_storage()
    try:
        if kind == "parts":
            return _parts_view(media, storage)
        return _object_view(media, storage)
    except (StorageUnavailable, StorageError, OSError) as exc:
        return StorageView(kind=kind, reachable=False, error=_reason(exc))


def _parts_view(media: MediaUpload, storage: StorageBackend) -> StorageView:
    recorded = list(UploadPart.objects.filter(media=media).values_list("part_number", "size", "etag"))
    closed = media.status != MediaStatus.PENDING
    try:
        stored: list[StoredPart] | None = storage_call(
            storage.list_parts, key=media.object_key, upload_id=media.multipart_upload_id
        )
    except UploadNotFound:
        stored = None
    if stored is not None:
        plan = media_plan(media) if not closed else None
        held = {p.part_number for p in stored}
        return _view(
            "parts",
            parts=_compare_parts(recorded, stored),
            missing_parts=tuple(n for n in range(1, plan.part_count + 1) if n not in held) if plan else (),
            fields=(_upload_field(media, upload_open=True),),
        )
    # The upload is gone at storage: completed there (its object then exists) or aborted.
    obj = storage_call(storage.head, key=media.object_key)
    fields = (_upload_field(media, upload_open=False), _object_field(media, obj))
    if closed:  # the parts' history is in the database's table; storage has nothing to set beside it
        return _view("parts", stored_object=obj, fields=fields)
    return _view(
        "parts",
        error=f"Storage has no multipart upload {media.multipart_upload_id} for this key: "
        "it was completed or aborted there.",
        parts=_compare_parts(recorded, []),
        stored_object=obj,
        fields=fields,
    )


def _object_view(media: MediaUpload, storage: StorageBackend) -> StorageView:
    obj = storage_call(storage.head, key=media.object_key)
    fields = [_object_field(media, obj)]
    if obj is not None and media.status in (MediaStatus.UPLOADED, MediaStatus.PENDING):
        if media.status == MediaStatus.UPLOADED:
            fields.append(FieldComparison("size", media.size, obj.size, media.size == obj.size))
            fields.append(
                FieldComparison("ETag", _bare(media.etag), _bare(obj.etag), _bare(media.etag) == _bare(obj.etag))
            )
        fields.append(
            FieldComparison("declared size", media.declared_size, obj.size, media.declared_size in (None, obj.size))
        )
        fields.append(
            FieldComparison(
                "content type",
                media.content_type,
                obj.content_type,
                media.content_type.lower() == obj.content_type.split(";", 1)[0].strip().lower(),
            )
        )
    return _view("object", stored_object=obj, fields=tuple(fields))


def _compare_parts(recorded: list[tuple[int, int, str]], stored: list[StoredPart]) -> tuple[PartComparison, ...]:
    in_db = {number: (size, _bare(etag)) for number, size, etag in recorded}
    at_storage = {p.part_number: p for p in stored}
    rows = []
    for number in sorted(in_db.keys() | at_storage.keys()):
        db, st = in_db.get(number), at_storage.get(number)
        state: PartState
        if st is None:
            state = "only in database"
        elif db is None:
            state = "only in storage"
        else:
            state = "same" if db == (st.size, _bare(st.etag)) else "differs"
        rows.append(
            PartComparison(
                part_number=number,
                db_size=db[0] if db else None,
                db_etag=db[1] if db else None,
                storage_size=st.size if st else None,
                storage_etag=_bare(st.etag) if st else None,
                state=state,
            )
        )
    return tuple(rows)


def _upload_field(media: MediaUpload, *, upload_open: bool) -> FieldComparison:
    """A pending upload's multipart upload must be open at storage; a released one's gone."""
    expected = _expectation(media, OPEN)
    same = upload_open if expected == OPEN else not upload_open if expected == RELEASED else True
    return FieldComparison("multipart upload", expected, OPEN if upload_open else ABSENT, same)


def _object_field(media: MediaUpload, obj: StoredObject | None) -> FieldComparison:
    """A finished file's object must exist and a released one's must not; a pending file's may
    be there already (sent, not yet completed), which is no difference."""
    expected = _expectation(media, NOT_YET)
    same = obj is not None if expected == STORED else obj is None if expected == RELEASED else True
    return FieldComparison("object", expected, PRESENT if obj is not None else ABSENT, same)


def _expectation(media: MediaUpload, pending: str) -> str:
    if media.status == MediaStatus.PENDING:
        return pending
    if media.status in (MediaStatus.ABORTED, MediaStatus.EXPIRED):
        return RELEASED if media.released_at else AWAITING_RELEASE
    return STORED


def _view(
    kind: ViewKind,
    *,
    error: str = "",
    parts: tuple[PartComparison, ...] = (),
    missing_parts: tuple[int, ...] = (),
    stored_object: StoredObject | None = None,
    fields: tuple[FieldComparison, ...] = (),
) -> StorageView:
    """A view storage answered, its differences counted: parts and facts that are not the same."""
    return StorageView(
        kind=kind,
        reachable=True,
        error=error,
        parts=parts,
        missing_parts=missing_parts,
        stored_object=stored_object,
        fields=fields,
        differences=sum(p.state != "same" for p in parts) + sum(not f.same for f in fields),
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, StorageUnavailable):
        reason = exc.details.get("reason")
        return f"{exc.message} ({reason})" if reason else exc.message
    return f"Storage could not be read: {exc}"


def _bare(etag: str) -> str:
    return etag.strip().strip('"')
