"""The bodies of the hottest answers (the status GET, signed part URLs) and of the longest (the
resume GET: every stored part and every missing part number, up to 10,000 of each), written out
by hand: a DRF serializer spends more time walking its fields than the rest of these requests
take, and at 10,000 parts it took 40% of a resume GET.

The serializers in uploads.api.serializers stay the contract: they document the schema, and
tests/api/test_hand_written_outputs.py pins that each function here returns exactly what its
serializer returns for the same objects (every key, value, type and order, optional keys left
out the same way). A change to one of those serializers must be made here too, or that test fails."""

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from uploads.models import MediaUpload, Submission
from uploads.selectors import media_bytes_received
from uploads.services.media import SignedPart
from uploads.services.progress import UploadProgress

# DRF's own conversion (ISO 8601 in the current time zone, "Z" for UTC), not a copy of it.
_datetime_field = serializers.DateTimeField()


def _datetime(value: datetime | None) -> str | None:
    return None if value is None else _datetime_field.to_representation(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str_dict(value: dict[Any, Any] | None) -> dict[str, str | None] | None:
    """DictField(child=CharField())."""
    return None if value is None else {str(k): None if v is None else str(v) for k, v in value.items()}


def _absent(value: Any) -> bool:
    """What CompactSerializer leaves out when its field is optional."""
    return value is None or value == ""


def status_output(submission: Submission, files: Iterable[MediaUpload]) -> dict[str, Any]:
    """StatusOutput(submission).data, where `files` are `submission.media.all()`."""
    body: dict[str, Any] = {
        "trackingId": _str(submission.tracking_id),
        "stage": _str(submission.stage),
        "message": _str(submission.stage_message),
        "timestamp": _datetime(submission.updated_at),
    }
    catalog_id = _str(submission.catalog_id)
    if not _absent(catalog_id):
        body["catalogId"] = catalog_id
    if not _absent(submission.error_details):
        body["errorDetails"] = submission.error_details
    body["files"] = [_file_status(media) for media in files]
    return body


def _file_status(media: MediaUpload) -> dict[str, Any]:
    """FileStatusOutput(media).data."""
    body: dict[str, Any] = {
        "mediaId": _str(media.media_id),
        "kind": _str(media.kind),
        "key": _str(media.object_key),
        "contentType": _str(media.content_type),
        "strategy": _str(media.strategy),
        "status": _str(media.status),
        "fileSize": _int(media.declared_size),
    }
    bytes_recorded = media_bytes_received(media)  # a method field: read-only, so optional
    if not _absent(bytes_recorded):
        body["bytesRecorded"] = bytes_recorded
    if media.part_count is not None:
        body["numParts"] = int(media.part_count)
    return body


# A path build_absolute_uri() would only prefix with the scheme and host: absolute ("/..."),
# no "//" (a host), no "." or ".." segment to resolve, nothing iri_to_uri() would quote.
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9_.:~/-]*")


def _absolute_urls(request: Request) -> Callable[[str], str]:
    """request.build_absolute_uri, at a fraction of its cost for the local backend's paths."""
    scheme_host = request.build_absolute_uri("/")[:-1]

    def absolute(url: str) -> str:
        if _PLAIN_PATH.fullmatch(url) and "/./" not in url and "/../" not in url:
            return scheme_host + url
        return request.build_absolute_uri(url)

    return absolute


def signed_parts_output(parts: Sequence[SignedPart], request: Request) -> dict[str, Any]:
    """SignedPartsOutput({"parts": parts}, context={"request": request}).data."""
    return {"parts": _signed_parts(parts, request)}


def progress_output(progress: UploadProgress, request: Request) -> dict[str, Any]:
    """ProgressOutput(progress, context={"request": request}).data."""
    media = progress.media
    body: dict[str, Any] = {
        "mediaId": _str(media.media_id),
        "trackingId": _str(media.submission.tracking_id),
        "key": _str(media.object_key),
        "status": _str(media.status),
        "strategy": _str(media.strategy),
        "fileSize": _int(media.declared_size),
        "expiresAt": _datetime(media.expires_at),
        "bytesUploaded": _int(progress.bytes_uploaded),
    }
    if media.part_size is not None:
        body["partSize"] = int(media.part_size)
    if media.part_count is not None:
        body["numParts"] = int(media.part_count)
    # PartOutput(many=True): a StoredPart's number and size are ints and its ETag a str already,
    # what the fields' int() and str() return; one dict per part and no call is the cost floor.
    body["completedParts"] = [
        {"partNumber": part.part_number, "size": part.size, "etag": part.etag} for part in progress.completed_parts
    ]
    body["pendingParts"] = list(map(int, progress.pending_parts))
    body["pendingPartUrls"] = _signed_parts(progress.part_urls, request)
    return body


def _signed_parts(parts: Sequence[SignedPart], request: Request) -> list[dict[str, Any]]:
    """SignedPartOutput(parts, many=True, context={"request": request}).data."""
    if not parts:
        return []
    absolute = _absolute_urls(request)
    expiries: dict[datetime, str | None] = {}  # a batch's URLs mostly share one expiry
    body = []
    for part in parts:
        signed = part.request
        expires_at = signed.expires_at
        if expires_at not in expiries:
            expiries[expires_at] = _datetime(expires_at)
        body.append(
            {
                "partNumber": _int(part.part_number),
                "url": None if signed.url is None else absolute(signed.url),
                "size": _int(part.size),
                "expiresAt": expiries[expires_at],
                "headers": {} if signed.headers == {} else _str_dict(signed.headers),  # local parts: none
            }
        )
    return body
