"""Helpers shared by the API tests on the embedded (local storage) backend: calling the
endpoints the way a client does, checking the error shape, and seeing what changed."""

import hashlib
import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.conftest import put_bytes
from uploads.keys import build_object_key
from uploads.models import Event, MediaUpload, OutboxMessage, Submission, UploadPart

KIB = 1024
PART = 64 * KIB  # UPLOADS_DEFAULT_PART_SIZE and UPLOADS_MIN_PART_SIZE in the test settings
MULTIPART_SIZE = 4 * PART + 10_000  # above the 256 KiB threshold: five parts, the last one short
UNKNOWN_TRACKING_ID = "trk_" + "0" * 24
UNKNOWN_MEDIA_ID = "med_" + "0" * 24

ERROR_KEYS = {"code", "message", "details"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is `{"error": {"code", "message", "details"}}` with this status; returns the error."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_field_error(response: Any, field: str) -> None:
    """A 400 from input validation that names the offending field."""
    error = assert_error(response, 400)
    fields = error["details"].get("fields", {})
    assert field in fields or error["details"].get("field") == field, error


def row_counts() -> dict[str, int]:
    """Every table a request could write to; equal before and after means nothing changed."""
    return {
        model.__name__: model.objects.count() for model in (Submission, MediaUpload, UploadPart, OutboxMessage, Event)
    }


def stored_files() -> list[str]:
    """Every file the local backend holds, relative to its root (objects, parts, temp files)."""
    root = Path(settings.UPLOADS_LOCAL_ROOT)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def object_bytes(key: str) -> bytes:
    return (Path(settings.UPLOADS_LOCAL_ROOT) / "objects" / key).read_bytes()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def quoted_md5(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def s3_multipart_etag(parts: list[bytes]) -> str:
    """S3's rule: md5 of the concatenated binary md5 digests of the parts, '-', the part count."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def split(data: bytes, part_size: int) -> list[bytes]:
    return [data[i : i + part_size] for i in range(0, len(data), part_size)]


# --- calling the API ---------------------------------------------------------------------------
def create_upload(
    api: APIClient,
    *,
    content_type: str = "audio/ogg",
    file_size: int = MULTIPART_SIZE,
    artisan_id: str = "art_1",
    tracking_id: str | None = None,
    part_size: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"artisanId": artisan_id, "contentType": content_type, "fileSize": file_size}
    if tracking_id is not None:
        body["trackingId"] = tracking_id
    if part_size is not None:
        body["partSize"] = part_size
    response = api.post("/v1/catalog/uploads", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def initiate(
    api: APIClient, *, content_type: str, file_size: int, tracking_id: str | None = None, artisan_id: str = "art_1"
) -> dict[str, Any]:
    body: dict[str, Any] = {"artisanId": artisan_id, "contentType": content_type, "fileSize": file_size}
    if tracking_id is not None:
        body["trackingId"] = tracking_id
    response = api.post("/v1/catalog/upload/initiate", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def sign_parts(api: APIClient, media_id: str, part_numbers: list[int]) -> dict[int, dict[str, Any]]:
    response = api.post(f"/v1/catalog/uploads/{media_id}/parts", {"partNumbers": part_numbers}, format="json")
    assert response.status_code == 200, response.content
    return {part["partNumber"]: part for part in response.json()["parts"]}


def put_part(signed: dict[str, Any], data: bytes) -> Any:
    response = put_bytes(signed["url"], data, signed["headers"])
    assert response.status_code == 200, response.content
    return response


def upload_multipart(api: APIClient, data: bytes, **create: Any) -> dict[str, Any]:
    """Creates a multipart upload of `data` and PUTs every part; returns the create response."""
    created = create_upload(api, file_size=len(data), **create)
    assert created["strategy"] == "multipart"
    chunks = split(data, created["partSize"])
    signed = sign_parts(api, created["mediaId"], list(range(1, len(chunks) + 1)))
    for number, chunk in enumerate(chunks, start=1):
        put_part(signed[number], chunk)
    return created


PHOTO = b"\xff\xd8\xff" + payload(5000, seed=1)
AUDIO = b"OggS" + payload(7000, seed=2)


def uploaded_submission(api: APIClient) -> dict[str, str]:
    """A submission whose photo and audio are both at storage, ready to complete."""
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    audio = initiate(api, content_type="audio/ogg", file_size=len(AUDIO), tracking_id=photo["trackingId"])
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    assert put_bytes(audio["uploadUrl"], AUDIO, audio["headers"]).status_code == 200
    return {
        "trackingId": photo["trackingId"],
        "photoKey": photo["key"],
        "audioKey": audio["key"],
        "photoMediaId": photo["mediaId"],
        "audioMediaId": audio["mediaId"],
    }


def complete_body(submission: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trackingId": submission["trackingId"],
        "photoKey": submission["photoKey"],
        "audioKey": submission["audioKey"],
        "language": "hi",
    }
    body.update(overrides)
    return body


def staff_client(
    tenant: Tenant | None,
    role: str = Membership.Role.VIEWER,
    username: str = "",
    *,
    also: Sequence[tuple[Tenant, str]] = (),
) -> Client:
    """A logged-in admin session of a staff member with `role` in `tenant` (None: staff with no
    membership at all), and the roles in `also` in further tenants."""
    name = username or (f"{role}_{tenant.id}" if tenant else "staff")
    user = User.objects.create_user(name, password="pw", is_staff=True)
    memberships = [(tenant, role)] if tenant else []
    for member_of, as_role in [*memberships, *also]:
        Membership.objects.create(user=user, tenant=member_of, role=as_role)
    client = Client()
    client.force_login(user)
    return client


def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def staff_action(
    client: Client,
    action: str,
    submissions: list[Submission],
    reason: str = "ticket 4711",
    versions: dict[str, int | str] | None = None,
) -> tuple[Any, Any]:
    """Runs a staff action from the submission list as a person does: asks for it (the
    confirmation page), then confirms with a reason and the versions the page showed. `versions`
    (`version_<pk>=N`) overrides what the page showed. Returns both responses, the second followed."""
    selected = {"action": action, "_selected_action": [s.pk for s in submissions]}
    confirmation = client.post("/admin/uploads/submission/", selected)
    shown = {f"version_{s.pk}": Submission.objects.get(pk=s.pk).version for s in submissions}
    confirm = {**selected, **shown, **(versions or {}), "confirm": "yes", "reason": reason}
    return confirmation, client.post("/admin/uploads/submission/", confirm, follow=True)


def media_row(
    submission: Submission, kind: str, *, status: str = "pending", part_count: int = 0, parts: int = 0
) -> MediaUpload:
    """A file written straight to the database, nothing at storage: for pages and counts that
    read rows only. `part_count` > 0 makes it multipart (PART-sized parts), with parts 1..`parts`
    recorded."""
    multipart = part_count > 0
    media = MediaUpload(
        submission=submission,
        kind=kind,
        status=status,
        content_type="audio/ogg" if kind == "audio" else "image/jpeg",
        strategy="multipart" if multipart else "single",
        declared_size=part_count * PART if multipart else 5000,
        part_size=PART if multipart else None,
        part_count=part_count or None,
        expires_at=timezone.now() + timedelta(days=1),
    )
    media.multipart_upload_id = f"upload-{media.media_id}" if multipart else ""
    if status == "uploaded":
        media.size, media.etag = media.declared_size, '"0123456789abcdef0123456789abcdef"'
    ext = "ogg" if kind == "audio" else "jpg"
    media.object_key = build_object_key(
        tenant_id=submission.tenant_id,
        artisan_id=submission.artisan_id,
        tracking_id=submission.tracking_id,
        media_id=media.media_id,
        ext=ext,
    )
    media.save()
    record_parts(media, 1, parts)
    return media


def store_parts_directly(media: MediaUpload, chunks: Sequence[bytes], first: int = 1) -> None:
    """Writes parts where the local backend keeps them (`multipart/<uploadId>/<NNNNN>.<md5>`,
    see uploads.storage.local), skipping thousands of HTTP round trips and fsyncs."""
    directory = Path(settings.UPLOADS_LOCAL_ROOT) / "multipart" / media.multipart_upload_id
    for number, chunk in enumerate(chunks, start=first):
        (directory / f"{number:05d}.{hashlib.md5(chunk).hexdigest()}").write_bytes(chunk)


def record_parts(media: MediaUpload, first: int, last: int) -> None:
    """Parts first..last as a client would have recorded them, in bulk, with the file's counters."""
    UploadPart.objects.bulk_create(
        [UploadPart(media=media, part_number=n, size=PART, etag=f'"{n:032x}"') for n in range(first, last + 1)],
        batch_size=500,
    )
    count = last - first + 1
    MediaUpload.objects.filter(pk=media.pk).update(
        parts_recorded=F("parts_recorded") + count, bytes_recorded=F("bytes_recorded") + count * PART
    )
