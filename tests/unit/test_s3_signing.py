"""The S3 backend against moto in-process. moto does not check presigned signatures or expiry,
so for signing these tests assert what each URL signs: bucket, exact key, expiry, region and the
headers S3 will hold the client to (Content-Length always, Content-Type for a single PUT)."""

from collections.abc import Iterator
from hashlib import md5
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from botocore.stub import Stubber

from tests.conftest import BUCKET, REGION
from uploads.storage import PartsRejected, S3Storage, StoredPart, UploadNotFound

KEY = "tenant_a/art_1/trk_0123456789abcdef/med_0123456789abcdef.jpg"


@pytest.fixture
def storage(s3: Any) -> S3Storage:
    return S3Storage(bucket=BUCKET, region=REGION)


def signed_parts_of(url: str) -> tuple[str, str, dict[str, str]]:
    """(bucket, key, query) of a presigned URL, whichever addressing style botocore chose."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    if parts.hostname and parts.hostname.startswith(f"{BUCKET}."):
        return BUCKET, path.removeprefix("/"), query
    bucket, _, key = path.removeprefix("/").partition("/")
    return bucket, key, query


def signed_headers(query: dict[str, str]) -> set[str]:
    return set(query["X-Amz-SignedHeaders"].split(";"))


def upload_parts(s3: Any, key: str, upload_id: str, bodies: list[bytes]) -> None:
    for number, body in enumerate(bodies, start=1):
        s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body)


@pytest.fixture
def list_parts_requests(storage: S3Storage) -> Iterator[list[dict[str, Any]]]:
    """Makes S3 answer ListParts two parts at a time, and records every ListParts request, so
    a caller that reads only the first page is caught."""
    requests: list[dict[str, Any]] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxParts"] = 2
        requests.append(dict(params))

    storage.client.meta.events.register("provide-client-params.s3.ListParts", small_pages)
    yield requests
    storage.client.meta.events.unregister("provide-client-params.s3.ListParts", small_pages)


def test_presigned_put_signs_bucket_key_expiry_length_and_type(storage: S3Storage) -> None:
    signed = storage.presign_put(key=KEY, content_type="image/jpeg", size=12345, expires_in=600)

    bucket, key, query = signed_parts_of(signed.url)
    assert (bucket, key) == (BUCKET, KEY)
    assert signed.method == "PUT"
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert f"/{REGION}/s3/aws4_request" in query["X-Amz-Credential"]
    assert {"content-length", "content-type", "host"} <= signed_headers(query)
    assert "uploadId" not in query and "partNumber" not in query
    assert signed.headers == {"Content-Type": "image/jpeg", "If-None-Match": "*"}


def test_a_put_without_a_declared_size_is_never_signed_as_s3_would_take_any_body(storage: S3Storage) -> None:
    """Unbounded at S3 whatever the portal means: a file of undeclared size gets a POST form."""
    with pytest.raises(ValueError, match="presign_post"):
        storage.presign_put(key=KEY, content_type="audio/ogg", size=None, expires_in=3600, max_bytes=1000)


def test_presigned_part_signs_upload_id_part_number_expiry_and_length(storage: S3Storage) -> None:
    signed = storage.presign_parts(key=KEY, upload_id="upload-abc", parts=[(7, 65536)], expires_in=900)[0]

    bucket, key, query = signed_parts_of(signed.url)
    assert (bucket, key) == (BUCKET, KEY)
    assert query["uploadId"] == "upload-abc"
    assert query["partNumber"] == "7"
    assert query["X-Amz-Expires"] == "900"
    assert f"/{REGION}/s3/aws4_request" in query["X-Amz-Credential"]
    assert {"content-length", "host"} <= signed_headers(query)
    assert signed.method == "PUT"


def test_presigned_expiry_is_reported_in_the_signed_request(storage: S3Storage) -> None:
    short = storage.presign_parts(key=KEY, upload_id="u", parts=[(1, 1)], expires_in=60)[0]
    long = storage.presign_parts(key=KEY, upload_id="u", parts=[(1, 1)], expires_in=3600)[0]

    assert 3500 < (long.expires_at - short.expires_at).total_seconds() < 3600


def test_list_parts_reads_every_page(storage: S3Storage, s3: Any, list_parts_requests: list[dict[str, Any]]) -> None:
    upload_id = storage.create_multipart(key=KEY, content_type="image/jpeg")
    bodies = [bytes([n]) * (100 + n) for n in range(1, 6)]
    upload_parts(s3, KEY, upload_id, bodies)

    parts = storage.list_parts(key=KEY, upload_id=upload_id)

    assert [(p.part_number, p.size) for p in parts] == [(n, 100 + n) for n in range(1, 6)]
    assert [p.etag for p in parts] == [f'"{md5(body).hexdigest()}"' for body in bodies]
    assert len(list_parts_requests) == 3  # pages of 2, 2 and 1 part


def test_list_parts_of_a_gone_upload_raises_upload_not_found(storage: S3Storage) -> None:
    upload_id = storage.create_multipart(key=KEY, content_type="image/jpeg")
    storage.abort_multipart(key=KEY, upload_id=upload_id)

    with pytest.raises(UploadNotFound):
        storage.list_parts(key=KEY, upload_id=upload_id)


def test_complete_multipart_assembles_the_object_with_s3s_multipart_etag(storage: S3Storage, s3: Any) -> None:
    upload_id = storage.create_multipart(key=KEY, content_type="image/jpeg")
    bodies = [b"a" * 64 * 1024, b"b" * 64 * 1024, b"tail"]
    upload_parts(s3, KEY, upload_id, bodies)

    storage.complete_multipart(key=KEY, upload_id=upload_id, parts=storage.list_parts(key=KEY, upload_id=upload_id))

    stored = storage.head(key=KEY)
    digests = b"".join(md5(body).digest() for body in bodies)
    assert stored is not None
    assert stored.size == sum(len(body) for body in bodies)
    assert stored.etag == f'"{md5(digests).hexdigest()}-3"'
    assert stored.content_type == "image/jpeg"
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"".join(bodies)


def test_complete_multipart_sends_the_parts_and_turns_no_such_upload_into_upload_not_found(
    storage: S3Storage,
) -> None:
    """S3 answers NoSuchUpload once an upload is completed or aborted. moto (5.2) fails with an
    internal KeyError there instead, so S3's documented answer is stubbed."""
    parts = [StoredPart(part_number=1, size=65536, etag='"aa"'), StoredPart(part_number=2, size=10, etag='"bb"')]
    with Stubber(storage.client) as stubber:
        stubber.add_client_error(
            "complete_multipart_upload",
            service_error_code="NoSuchUpload",
            service_message="The specified multipart upload does not exist.",
            http_status_code=404,
            expected_params={
                "Bucket": BUCKET,
                "Key": KEY,
                "UploadId": "gone-upload",
                "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"aa"'}, {"PartNumber": 2, "ETag": '"bb"'}]},
            },
        )
        with pytest.raises(UploadNotFound):
            storage.complete_multipart(key=KEY, upload_id="gone-upload", parts=parts)
        stubber.assert_no_pending_responses()


def test_complete_multipart_with_a_wrong_etag_is_parts_rejected_not_upload_not_found(
    storage: S3Storage, s3: Any
) -> None:
    upload_id = storage.create_multipart(key=KEY, content_type="image/jpeg")
    upload_parts(s3, KEY, upload_id, [b"only part"])

    with pytest.raises(PartsRejected, match="InvalidPart"):
        storage.complete_multipart(
            key=KEY, upload_id=upload_id, parts=[StoredPart(part_number=1, size=9, etag='"0123456789abcdef"')]
        )
    assert [p.part_number for p in storage.list_parts(key=KEY, upload_id=upload_id)] == [1]


def test_abort_is_idempotent(storage: S3Storage, s3: Any) -> None:
    upload_id = storage.create_multipart(key=KEY, content_type="image/jpeg")
    upload_parts(s3, KEY, upload_id, [b"part"])

    storage.abort_multipart(key=KEY, upload_id=upload_id)
    storage.abort_multipart(key=KEY, upload_id=upload_id)
    storage.abort_multipart(key=KEY, upload_id="never-created")

    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_head_of_a_missing_key_is_none(storage: S3Storage) -> None:
    assert storage.head(key=KEY) is None


def test_head_of_a_stored_object_reports_size_etag_and_type(storage: S3Storage, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"photo bytes", ContentType="image/jpeg")

    stored = storage.head(key=KEY)

    assert stored is not None
    assert (stored.size, stored.etag, stored.content_type) == (11, f'"{md5(b"photo bytes").hexdigest()}"', "image/jpeg")


def test_object_uri_names_bucket_and_key() -> None:
    assert S3Storage(bucket=BUCKET, region=REGION).object_uri(KEY) == f"s3://{BUCKET}/{KEY}"


def test_urls_on_aws_use_the_regional_virtual_host(storage: S3Storage) -> None:
    signed = storage.presign_parts(key=KEY, upload_id="u1", parts=[(1, 10)], expires_in=60)[0]
    assert urlsplit(signed.url).netloc == f"{BUCKET}.s3.{REGION}.amazonaws.com"
