"""Companion's S3 routes, answered by the portal so stock Uppy (`@uppy/aws-s3` with
`companionEndpoint`) uploads into it. Each view: validate, call one service, render Companion's
response shape. Unlike Companion: the caller is a browser session (staff or upload link), keys
are the portal's, and an (uploadId, key) pair must name one of the caller's own uploads."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.http import HttpRequest, JsonResponse, QueryDict
from django.urls import reverse
from django.utils import timezone

from tenants.auth import SessionGrant, session_grant
from uploads import selectors, services
from uploads.errors import InvalidInput, NotAuthenticated, NotFound, TenantMismatch
from uploads.models import MediaUpload
from uploads.uppy.http import json_body, uppy_route

MAX_PART_NUMBER = 10_000


@uppy_route("GET")
def upload_parameters(request: HttpRequest) -> JsonResponse:
    """`GET /uppy/s3/params?filename=&type=&metadata[k]=v`: a presigned form POST for one file."""
    meta = _query_metadata(request.GET)
    grant = _grant(request, tenant_id=services.uppy_meta_value(meta, "tenantId"))
    initiated = services.media_initiate_uppy(
        tenant=grant.tenant,
        session_artisan_id=grant.artisan_id,
        content_type=_required_string(request.GET.get("type"), "type"),
        meta=meta,
        multipart=False,
        actor=grant.actor,
    )
    form = initiated.form
    assert form is not None
    return JsonResponse(
        {
            "method": "POST",
            "url": request.build_absolute_uri(form.url),
            "fields": form.fields,
            "expires": _seconds_until(form.expires_at),
        }
    )


@uppy_route("POST")
def create_multipart(request: HttpRequest) -> JsonResponse:
    """`POST /uppy/s3/multipart` `{filename, type, metadata}` → `{key, uploadId}`."""
    body = _object(json_body(request), "body")
    meta = _object(body.get("metadata") or {}, "metadata")
    grant = _grant(request, tenant_id=services.uppy_meta_value(meta, "tenantId"))
    initiated = services.media_initiate_uppy(
        tenant=grant.tenant,
        session_artisan_id=grant.artisan_id,
        content_type=_required_string(body.get("type"), "type"),
        meta=meta,
        multipart=True,
        actor=grant.actor,
    )
    media = initiated.media
    return JsonResponse({"key": media.object_key, "uploadId": media.multipart_upload_id})


@uppy_route("GET")
def sign_part(request: HttpRequest, upload_id: str, part_number: str) -> JsonResponse:
    """`GET /uppy/s3/multipart/{uploadId}/{partNumber}?key=` → `{url, expires}`: any part size."""
    number = _part_number(part_number)
    _, media = _own_upload(request, upload_id)
    [signed] = services.media_sign_parts(media=media, part_numbers=[number])
    return JsonResponse(
        {"url": request.build_absolute_uri(signed.request.url), "expires": _seconds_until(signed.request.expires_at)}
    )


@uppy_route("GET", "DELETE")
def upload(request: HttpRequest, upload_id: str) -> JsonResponse:
    """`GET /uppy/s3/multipart/{uploadId}?key=`: the parts storage holds (Uppy resumes from them);
    `DELETE`: abort, freeing storage (`{}`)."""
    grant, media = _own_upload(request, upload_id)
    if request.method == "DELETE":
        services.media_abort(media=media, actor=grant.actor)
        return JsonResponse({})
    progress = services.media_progress(media=media)
    parts = [{"PartNumber": p.part_number, "Size": p.size, "ETag": p.etag} for p in progress.completed_parts]
    return JsonResponse(parts, safe=False)


@uppy_route("POST")
def complete_multipart(request: HttpRequest, upload_id: str) -> JsonResponse:
    """`POST /uppy/s3/multipart/{uploadId}/complete?key=` `{parts: [{PartNumber, ETag}]}` →
    `{location, key}`. The parts are checked at storage; the client's list must match it."""
    claimed = _claimed_parts(_object(json_body(request), "body").get("parts"))
    grant, media = _own_upload(request, upload_id)
    media = services.media_complete(media=media, actor=grant.actor, claimed_parts=claimed)
    location = request.build_absolute_uri(reverse("upload-detail", args=[media.media_id]))
    return JsonResponse({"location": location, "key": media.object_key})


# --- the caller and its uploads --------------------------------------------------------------
def _grant(request: HttpRequest, *, tenant_id: str | None) -> SessionGrant:
    grant = session_grant(request, tenant_id=tenant_id)
    if grant is None:
        raise NotAuthenticated("Log in to the admin or open an upload link first.")
    return grant


def _own_upload(request: HttpRequest, upload_id: str) -> tuple[SessionGrant, MediaUpload]:
    """The caller's upload named by (uploadId, ?key=). The key's first segment names the tenant
    (so staff of several tenants need no header Uppy cannot send); a tenant the session may not
    act for is answered like a missing upload."""
    key = _required_string(request.GET.get("key"), "key")
    try:
        grant = _grant(request, tenant_id=key.split("/", 1)[0])
    except TenantMismatch:
        raise NotFound("No such multipart upload.", details={"uploadId": upload_id, "key": key}) from None
    media = selectors.media_get_multipart(
        tenant=grant.tenant, upload_id=upload_id, key=key, artisan_id=grant.artisan_id
    )
    return grant, media


# --- input ---------------------------------------------------------------------------------------
def _query_metadata(query: QueryDict) -> dict[str, str]:
    """Uppy's `metadata[name]=value` query parameters."""
    return {
        name[len("metadata[") : -1]: query.get(name) or ""
        for name in query
        if name.startswith("metadata[") and name.endswith("]")
    }


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object.", details={"field": field})
    return value


def _required_string(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} is required.", details={"field": field})
    return value


def _part_number(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PART_NUMBER):
        raise InvalidInput(
            f"The part number must be a number between 1 and {MAX_PART_NUMBER}.", details={"field": "partNumber"}
        )
    return int(raw)


def _claimed_parts(value: Any) -> list[services.ClaimedPart]:
    if not isinstance(value, list) or not value:
        raise InvalidInput("parts must be a non-empty array of {PartNumber, ETag}.", details={"field": "parts"})
    parts = []
    for item in value:
        number, etag = (item.get("PartNumber"), item.get("ETag")) if isinstance(item, dict) else (None, None)
        if type(number) is not int or not 1 <= number <= MAX_PART_NUMBER or not isinstance(etag, str) or not etag:
            raise InvalidInput("parts must be a non-empty array of {PartNumber, ETag}.", details={"field": "parts"})
        parts.append(services.ClaimedPart(part_number=number, etag=etag))
    return parts


def _seconds_until(when: datetime) -> int:
    return max(0, int((when - timezone.now()).total_seconds()))
