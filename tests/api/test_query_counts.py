"""The number of queries per request does not grow with the number of parts: the same bound
holds at 10 parts and at 2,000."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.helpers import create_upload, payload, quoted_md5, split, store_parts_directly
from uploads.models import MediaUpload, UploadPart
from uploads.storage import get_storage

TINY_PART = 16  # lowered minimum part size (below), so 2,000 parts stay small and quick to write

# One budget per endpoint for every part count. Authentication is one query (the key's
# last-use stamp is already fresh after a warm-up request).
MAX_QUERIES = {
    "status": 3,
    "progress": 2,
    "sign": 2,
    # Both include a stage change: UPDATE, re-read, Event and status-update outbox row.
    "record": 13,  # the first part moves the submission to "uploading"; each one is a sign of life for triage
    "complete": 12,  # the file finishing is a sign of life for triage (one UPDATE)
}


@pytest.fixture(params=[10, 2_000], ids=lambda n: f"{n}-parts")
def big_upload(request: Any, api: APIClient, settings: Any) -> dict[str, Any]:
    """A multipart upload whose every part is at storage and reported by the client."""
    settings.UPLOADS_MIN_PART_SIZE = TINY_PART
    parts: int = request.param
    data = payload(parts * TINY_PART, seed=parts)
    created = create_upload(api, file_size=len(data), part_size=TINY_PART)
    assert created["numParts"] == parts
    media = MediaUpload.objects.get(media_id=created["mediaId"])
    chunks = split(data, TINY_PART)
    store_parts_directly(media, chunks)
    UploadPart.objects.bulk_create(
        UploadPart(media=media, part_number=n, size=len(chunk), etag=quoted_md5(chunk))
        for n, chunk in enumerate(chunks, start=1)
    )
    MediaUpload.objects.filter(pk=media.pk).update(parts_recorded=len(chunks), bytes_recorded=len(data))
    stored = get_storage().list_parts(key=media.object_key, upload_id=media.multipart_upload_id)
    assert len(stored) == parts
    assert api.get(f"/v1/catalog/status/{created['trackingId']}").status_code == 200  # warm-up
    return {**created, "parts": parts, "size": len(data)}


def test_status_query_count_does_not_grow_with_parts(
    api: APIClient, big_upload: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(MAX_QUERIES["status"]):
        response = api.get(f"/v1/catalog/status/{big_upload['trackingId']}")
    assert response.status_code == 200
    [file] = response.json()["files"]
    assert (file["numParts"], file["bytesRecorded"]) == (big_upload["parts"], big_upload["size"])


def test_progress_query_count_does_not_grow_with_parts(
    api: APIClient, big_upload: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(MAX_QUERIES["progress"]):
        response = api.get(f"/v1/catalog/uploads/{big_upload['mediaId']}?urls=100")
    assert response.status_code == 200
    body = response.json()
    assert len(body["completedParts"]) == big_upload["parts"]
    assert body["bytesUploaded"] == big_upload["size"]


def test_signing_a_batch_query_count_does_not_grow_with_parts(
    api: APIClient, big_upload: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    numbers = list(range(1, min(100, big_upload["parts"]) + 1))
    with django_assert_max_num_queries(MAX_QUERIES["sign"]):
        response = api.post(
            f"/v1/catalog/uploads/{big_upload['mediaId']}/parts", {"partNumbers": numbers}, format="json"
        )
    assert response.status_code == 200
    assert len(response.json()["parts"]) == len(numbers)


def test_recording_a_part_query_count_does_not_grow_with_parts(
    api: APIClient, big_upload: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    last = big_upload["parts"]
    with django_assert_max_num_queries(MAX_QUERIES["record"]):
        response = api.put(
            f"/v1/catalog/uploads/{big_upload['mediaId']}/parts/{last}",
            {"etag": '"abc"', "size": TINY_PART},
            format="json",
        )
    assert response.status_code == 200


def test_complete_query_count_does_not_grow_with_parts(
    api: APIClient, big_upload: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(MAX_QUERIES["complete"]):
        response = api.post(f"/v1/catalog/uploads/{big_upload['mediaId']}/complete")
    assert response.status_code == 200, response.content
    assert response.json()["size"] == big_upload["size"]
