"""The API on the S3 backend against a real moto server over HTTP: presigned URLs are PUT to
with `requests`, as a client would, and boto3 (through django-storages) finds the server through
its own AWS_ENDPOINT_URL_S3 variable, as any S3-compatible endpoint would be configured."""

import random
from hashlib import md5
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from django.conf import settings as django_settings
from moto.s3 import models as moto_s3_models

from tests.helpers import PART, create_upload, initiate, sign_parts
from tests.integration.conftest import ServerBucket
from uploads.queue import LocalQueue, get_publisher


def file_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def quoted_md5(data: bytes) -> str:
    return f'"{md5(data).hexdigest()}"'


def multipart_etag(parts: list[bytes]) -> str:
    """S3's rule: md5 of the concatenated binary md5 digests of the parts, '-', the part count."""
    digests = b"".join(md5(part).digest() for part in parts)
    return f'"{md5(digests).hexdigest()}-{len(parts)}"'


def assert_path_style_url_to(url: str, bucket: ServerBucket, key: str) -> dict[str, list[str]]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == bucket.endpoint
    assert parts.path == f"/{bucket.name}/{key}"
    return parse_qs(parts.query)


def put(url: str, data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.put(url, data=data, headers=headers or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_server_enforces_the_same_minimum_part_size_as_the_plan(bucket: ServerBucket) -> None:
    # tests/conftest.py lowers moto's 5 MiB rule before moto is imported; the server runs in
    # this process, so it must now agree with the portal's test plan.
    assert moto_s3_models.S3_UPLOAD_PART_MIN_SIZE == django_settings.UPLOADS_MIN_PART_SIZE == PART
    s3, key = bucket.client, "tenant_a/min-size"

    def complete_with_first_part_of(size: int) -> None:
        upload_id = s3.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
        etags = [
            s3.upload_part(Bucket=bucket.name, Key=key, UploadId=upload_id, PartNumber=n, Body=body)["ETag"]
            for n, body in ((1, b"x" * size), (2, b"last"))
        ]
        s3.complete_multipart_upload(
            Bucket=bucket.name,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]},
        )

    with pytest.raises(ClientError, match="EntityTooSmall"):
        complete_with_first_part_of(PART - 1)
    complete_with_first_part_of(PART)
    assert s3.head_object(Bucket=bucket.name, Key=key)["ContentLength"] == PART + 4


def test_multipart_upload_out_of_order_resumes_and_completes_byte_identical(
    api: Any, other_api: Any, bucket: ServerBucket
) -> None:
    data = file_bytes(3 * PART + 4321, seed=1)
    expected_parts = chunks(data, PART)
    created = create_upload(api, file_size=len(data), part_size=PART)
    media_id, key = created["mediaId"], created["key"]
    assert (created["strategy"], created["partSize"], created["numParts"]) == ("multipart", PART, 4)

    # Parts 4 and 2 first, the last part before the others.
    signed = sign_parts(api, media_id, [4, 2])
    for number in (4, 2):
        query = assert_path_style_url_to(signed[number]["url"], bucket, key)
        assert query["partNumber"] == [str(number)]
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
        assert signed[number]["size"] == len(expected_parts[number - 1])
        response = put(signed[number]["url"], expected_parts[number - 1], signed[number]["headers"])
        assert response.headers["ETag"] == quoted_md5(expected_parts[number - 1])
    recorded = api.put(
        f"/v1/catalog/uploads/{media_id}/parts/2",
        {"etag": quoted_md5(expected_parts[1]), "size": PART},
        format="json",
    )
    assert recorded.status_code == 200, recorded.content

    # The client lost track: storage's ListParts says what is there and what is still to send.
    progress = api.get(f"/v1/catalog/uploads/{media_id}?urls=10")
    assert progress.status_code == 200, progress.content
    body = progress.json()
    assert body["completedParts"] == [
        {"partNumber": 2, "size": PART, "etag": quoted_md5(expected_parts[1])},
        {"partNumber": 4, "size": 4321, "etag": quoted_md5(expected_parts[3])},
    ]
    assert body["pendingParts"] == [1, 3]
    assert body["bytesUploaded"] == PART + 4321
    assert other_api.get(f"/v1/catalog/uploads/{media_id}").status_code == 404

    early = api.post(f"/v1/catalog/uploads/{media_id}/complete")
    assert early.status_code == 409, early.content
    assert early.json()["error"]["details"]["missingParts"] == [1, 3]

    for resumed in reversed(body["pendingPartUrls"]):
        assert_path_style_url_to(resumed["url"], bucket, key)
        put(resumed["url"], expected_parts[resumed["partNumber"] - 1], resumed["headers"])

    assert other_api.post(f"/v1/catalog/uploads/{media_id}/complete").status_code == 404
    completed = api.post(f"/v1/catalog/uploads/{media_id}/complete")
    assert completed.status_code == 200, completed.content
    assert completed.json() == {
        "mediaId": media_id,
        "key": key,
        "status": "uploaded",
        "size": len(data),
        "etag": multipart_etag(expected_parts),
    }
    assert bucket.object_bytes(key) == data
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert (head["ETag"], head["ContentType"]) == (multipart_etag(expected_parts), "audio/ogg")
    assert bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []

    again = api.post(f"/v1/catalog/uploads/{media_id}/complete")
    assert (again.status_code, again.json()) == (200, completed.json())


def test_single_put_from_initiate_with_the_returned_headers_completes(
    api: Any, other_api: Any, bucket: ServerBucket
) -> None:
    data = file_bytes(5000, seed=2)
    initiated = initiate(api, content_type="image/jpeg", file_size=len(data))
    query = assert_path_style_url_to(initiated["uploadUrl"], bucket, initiated["key"])
    assert {"content-length", "content-type", "if-none-match"} <= set(query["X-Amz-SignedHeaders"][0].split(";"))
    assert query["X-Amz-Expires"] == [str(django_settings.UPLOADS_URL_EXPIRY_SECONDS)]
    assert initiated["headers"] == {"Content-Type": "image/jpeg", "If-None-Match": "*"}

    response = put(initiated["uploadUrl"], data, initiated["headers"])
    assert response.headers["ETag"] == quoted_md5(data)

    media_id = initiated["mediaId"]
    assert other_api.post(f"/v1/catalog/uploads/{media_id}/complete").status_code == 404
    completed = api.post(f"/v1/catalog/uploads/{media_id}/complete")
    assert completed.status_code == 200, completed.content
    assert completed.json() == {
        "mediaId": media_id,
        "key": initiated["key"],
        "status": "uploaded",
        "size": len(data),
        "etag": quoted_md5(data),
    }
    assert bucket.object_bytes(initiated["key"]) == data
    assert bucket.client.head_object(Bucket=bucket.name, Key=initiated["key"])["ContentType"] == "image/jpeg"

    # The URL still has most of its hour; replaying it cannot swap the bytes that were checked.
    replay = requests.put(
        initiated["uploadUrl"], data=file_bytes(5000, seed=3), headers=initiated["headers"], timeout=30
    )
    assert replay.status_code == 412, replay.text
    assert bucket.object_bytes(initiated["key"]) == data


def test_single_put_of_other_than_the_declared_size_does_not_complete(api: Any, bucket: ServerBucket) -> None:
    # moto does not enforce the signed Content-Length (S3 does), so the portal's own check shows.
    initiated = initiate(api, content_type="image/jpeg", file_size=5000)
    put(initiated["uploadUrl"], b"short", initiated["headers"])

    response = api.post(f"/v1/catalog/uploads/{initiated['mediaId']}/complete")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "object_missing"
    assert response.json()["error"]["details"] == {"key": initiated["key"], "size": 5, "expectedSize": 5000}


def test_completing_the_submission_queues_s3_uris_of_photo_and_audio(
    api: Any, other_api: Any, bucket: ServerBucket, django_capture_on_commit_callbacks: Any
) -> None:
    photo = file_bytes(7000, seed=3)
    audio = file_bytes(PART + 100, seed=4)
    photo_upload = initiate(api, content_type="image/jpeg", file_size=len(photo))
    tracking_id = photo_upload["trackingId"]
    audio_upload = create_upload(api, file_size=len(audio), part_size=PART, tracking_id=tracking_id)
    put(photo_upload["uploadUrl"], photo, photo_upload["headers"])
    for number, part in sign_parts(api, audio_upload["mediaId"], [1, 2]).items():
        put(part["url"], chunks(audio, PART)[number - 1], part["headers"])
    request = {
        "trackingId": tracking_id,
        "photoKey": photo_upload["key"],
        "audioKey": audio_upload["key"],
        "language": "hi",
    }

    assert other_api.post("/v1/catalog/upload/complete", request, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/v1/catalog/upload/complete", request, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        repeat = api.post("/v1/catalog/upload/complete", request, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["trackingId"] == tracking_id
    assert (repeat.status_code, repeat.json()) == (202, response.json())
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    [message] = list(queue.messages())
    assert message["body"]["photoKey"] == f"s3://{bucket.name}/{photo_upload['key']}"
    assert message["body"]["audioKey"] == f"s3://{bucket.name}/{audio_upload['key']}"
    assert message["body"]["trackingId"] == tracking_id
    assert bucket.object_bytes(photo_upload["key"]) == photo
    assert bucket.object_bytes(audio_upload["key"]) == audio
    status = api.get(f"/v1/catalog/status/{tracking_id}")
    assert status.json()["stage"] == "queued"
    assert {f["status"] for f in status.json()["files"]} == {"uploaded"}
