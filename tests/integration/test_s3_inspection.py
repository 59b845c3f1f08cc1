"""Staff triage against S3 on a moto server over HTTP: a preview URL is a presigned GET the
browser fetches from the bucket itself, and the storage view reads a real ListParts."""

from typing import Any
from urllib.parse import urlsplit

import requests

from tests.helpers import PART, PHOTO, create_upload, initiate, payload, put_part, quoted_md5, sign_parts, split
from tests.integration.conftest import ServerBucket
from uploads.models import MediaUpload
from uploads.services.inspection import media_preview_url, media_storage_view
from uploads.storage import get_storage


def finished_photo(api: Any) -> MediaUpload:
    started = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert requests.put(started["uploadUrl"], data=PHOTO, headers=started["headers"], timeout=30).status_code == 200
    assert api.post(f"/v1/catalog/uploads/{started['mediaId']}/complete").status_code == 200
    return MediaUpload.objects.get(media_id=started["mediaId"])


def test_preview_is_a_presigned_get_of_the_bucket_with_the_files_type(
    api: Any, other_api: Any, bucket: ServerBucket
) -> None:
    media = finished_photo(api)
    finished_photo(other_api)
    url = media_preview_url(media=media)
    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == bucket.endpoint  # the same addressing as the PUT URLs
    assert parts.path == f"/{bucket.name}/{media.object_key}"
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == PHOTO
    assert response.headers["Content-Type"] == "image/jpeg"
    ranged = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, PHOTO[:10])


def test_storage_view_compares_a_real_listparts_with_the_recorded_parts(
    api: Any, other_api: Any, bucket: ServerBucket
) -> None:
    data = payload(3 * PART + 1234, seed=3)
    chunks = split(data, PART)
    created = create_upload(api, file_size=len(data), part_size=PART)
    other = create_upload(other_api, file_size=len(data), part_size=PART)
    put_part(sign_parts(other_api, other["mediaId"], [3])[3], chunks[2])
    signed = sign_parts(api, created["mediaId"], [1, 2])
    for number in (1, 2):
        put_part(signed[number], chunks[number - 1])
    for number, etag in ((1, quoted_md5(chunks[0])), (3, quoted_md5(chunks[2]))):  # part 3 never reached S3
        recorded = api.put(
            f"/v1/catalog/uploads/{created['mediaId']}/parts/{number}",
            {"etag": etag, "size": len(chunks[number - 1])},
            format="json",
        )
        assert recorded.status_code == 200, recorded.content

    view = media_storage_view(media=MediaUpload.objects.get(media_id=created["mediaId"]))
    assert (view.kind, view.reachable, view.error) == ("parts", True, "")
    assert [(p.part_number, p.state) for p in view.parts] == [
        (1, "same"),
        (2, "only in storage"),
        (3, "only in database"),
    ]
    assert view.parts[1].storage_etag == quoted_md5(chunks[1]).strip('"')
    assert view.missing_parts == (3, 4)
    assert view.differences == 2

    assert api.post(f"/v1/catalog/uploads/{created['mediaId']}/complete").status_code == 409
    assert bucket.multipart_uploads_of(created["key"])  # reading changed nothing at storage


def test_storage_unreachable_is_shown_not_raised(api: Any, bucket: ServerBucket, monkeypatch: Any) -> None:
    media = finished_photo(api)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    from uploads.storage import _storage_for

    _storage_for.cache_clear()  # a fresh client, built against the dead endpoint
    try:
        view = media_storage_view(media=media)
    finally:
        _storage_for.cache_clear()
    assert (view.kind, view.reachable) == ("object", False)
    assert view.error


def test_a_get_signed_with_a_content_type_is_answered_with_it(api: Any, bucket: ServerBucket) -> None:
    media = finished_photo(api)
    signed = get_storage().presign_get(key=media.object_key, expires_in=60, content_type="application/octet-stream")
    assert signed.method == "GET"
    response = requests.get(signed.url, timeout=30)
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/octet-stream")
    assert response.content == PHOTO
