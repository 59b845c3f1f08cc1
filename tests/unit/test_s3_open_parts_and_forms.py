"""What the S3 backend signs for clients that declare no size (stock Uppy): part URLs bound to
no length, and form POSTs whose policy carries the size range and the type instead."""

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import BUCKET, REGION
from tests.unit.test_s3_signing import signed_headers, signed_parts_of
from uploads.storage import S3Storage

KEY = "tenant_a/art_1/trk_0123456789abcdef01234567/med_0123456789abcdef01234567.ogg"


@pytest.fixture
def storage(s3: Any) -> S3Storage:
    return S3Storage(bucket=BUCKET, region=REGION)


def test_a_part_url_without_a_size_signs_no_length(storage: S3Storage) -> None:
    bucket, key, query = signed_parts_of(
        storage.presign_parts(key=KEY, upload_id="u1", parts=[(9999, None)], expires_in=900)[0].url
    )
    assert (bucket, key, query["partNumber"], query["uploadId"]) == (BUCKET, KEY, "9999", "u1")
    assert signed_headers(query) == {"host"}
    sized = signed_parts_of(storage.presign_parts(key=KEY, upload_id="u1", parts=[(1, 10)], expires_in=900)[0].url)
    assert "content-length" in signed_headers(sized[2])


def test_a_form_policy_binds_key_type_size_range_and_expiry(storage: S3Storage) -> None:
    form = storage.presign_post(key=KEY, content_type="audio/ogg", max_bytes=4096, expires_in=600)
    assert form.url.endswith("/")
    assert form.fields["key"] == KEY and form.fields["Content-Type"] == "audio/ogg"
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    assert {"bucket": BUCKET} in policy["conditions"]
    assert {"key": KEY} in policy["conditions"]
    assert {"Content-Type": "audio/ogg"} in policy["conditions"]
    assert ["content-length-range", 1, 4096] in policy["conditions"]
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert abs((expiration - form.expires_at).total_seconds()) < 5
    assert 590 < (expiration - datetime.now(UTC)).total_seconds() <= 600


def test_a_path_style_bucket_url_gets_its_trailing_slash(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uppy reports `url + key` as the location: boto3's path-style URL (an S3-compatible
    endpoint) has no trailing slash of its own."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    form = S3Storage(bucket=BUCKET, region=REGION).presign_post(
        key=KEY, content_type="audio/ogg", max_bytes=1, expires_in=60
    )
    assert form.url == f"http://127.0.0.1:9000/{BUCKET}/"
