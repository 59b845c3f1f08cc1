"""Part URLs as the API hands them out and as the local backend takes them: bound by their
signature to one upload, part number and size, short-lived, and readable in both token forms,
the compressed one signed before part URLs were signed in batches and the plain one since
(uploads.storage.local_signing.sign_parts), so a deploy breaks no URL a client already holds."""

import string
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import signing
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import PART, assert_error, create_upload, payload, quoted_md5, sign_parts
from uploads.models import MediaUpload
from uploads.storage import local_signing

SALT = "uploads.storage.local.put"


@pytest.fixture
def upload(api: APIClient) -> MediaUpload:
    """A multipart upload of 3 parts of PART bytes, planned."""
    created = create_upload(api, file_size=3 * PART, part_size=PART)
    return MediaUpload.objects.get(media_id=created["mediaId"])


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def flipped(token: str, at: int) -> str:
    """`token` with the character at `at` changed in its top bit: a change of the bytes it
    encodes even in a last base64 character, whose low bits may be padding."""
    at %= len(token)
    old = token[at]
    new = B64[B64.index(old) ^ 32] if old in B64 else "A"
    return token[:at] + new + token[at + 1 :]


def completed_parts(api: APIClient, media: MediaUpload) -> list[dict[str, Any]]:
    completed: list[dict[str, Any]] = api.get(f"/v1/catalog/uploads/{media.media_id}").json()["completedParts"]
    return completed


def test_a_part_token_carries_exactly_key_upload_part_size_and_expiry(api: APIClient, upload: MediaUpload) -> None:
    signed = sign_parts(api, upload.media_id, [2])[2]
    claims = signing.loads(token_of(signed["url"]), salt=SALT)
    assert claims == {
        "k": upload.object_key,
        "u": upload.multipart_upload_id,
        "n": 2,
        "s": PART,
        "e": claims["e"],
    }
    assert abs(claims["e"] - (time.time() + 900)) < 5  # UPLOADS_PART_URL_EXPIRY_SECONDS


def test_a_part_url_signed_compressed_before_the_deploy_still_uploads_its_part(
    api: APIClient, upload: MediaUpload
) -> None:
    """The token form part URLs had before (signing.dumps with compress=True, as sign_put still
    makes single-PUT tokens): a client holding one keeps uploading until it expires."""
    claims = {"k": upload.object_key, "u": upload.multipart_upload_id, "n": 1, "s": PART, "e": int(time.time()) + 60}
    token = signing.dumps(claims, salt=SALT, compress=True)
    assert token.startswith(".")  # the compressed form indeed
    data = payload(PART)
    response = put_bytes(f"http://testserver/storage/put/{token}", data)
    assert response.status_code == 200, response.content
    assert completed_parts(api, upload) == [{"partNumber": 1, "size": PART, "etag": quoted_md5(data)}]


def test_a_part_url_of_either_form_past_its_expiry_is_403(
    api: APIClient, upload: MediaUpload, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = sign_parts(api, upload.media_id, [1])[1]["url"]
    claims = {**signing.loads(token_of(plain), salt=SALT), "n": 2}
    compressed = f"http://testserver/storage/put/{signing.dumps(claims, salt=SALT, compress=True)}"
    later = claims["e"] + 1
    monkeypatch.setattr(local_signing, "time", SimpleNamespace(time=lambda: later))
    assert_error(put_bytes(plain, payload(PART)), 403, "url_expired")
    assert_error(put_bytes(compressed, payload(PART)), 403, "url_expired")
    assert completed_parts(api, upload) == []


@pytest.mark.parametrize("at", [0, 1, 40, -50, -1])
def test_a_part_url_changed_anywhere_is_403(api: APIClient, upload: MediaUpload, at: int) -> None:
    url = sign_parts(api, upload.media_id, [1])[1]["url"]
    token = token_of(url)
    response = put_bytes(url.replace(token, flipped(token, at)), payload(PART))
    assert_error(response, 403, "url_invalid")
    assert completed_parts(api, upload) == []


def test_a_part_url_with_its_claims_rewritten_to_another_part_is_403(api: APIClient, upload: MediaUpload) -> None:
    """The claims are readable base64; rewriting them (another part number, any size) without
    the portal's key leaves a signature that no longer matches."""
    url = sign_parts(api, upload.media_id, [1])[1]["url"]
    token = token_of(url)
    _, timestamp, signature = token.split(":")
    claims = signing.loads(token, salt=SALT)
    rewritten = signing.b64_encode(signing.JSONSerializer().dumps({**claims, "n": 2, "s": None})).decode()
    response = put_bytes(url.replace(token, f"{rewritten}:{timestamp}:{signature}"), payload(PART))
    assert_error(response, 403, "url_invalid")
    assert completed_parts(api, upload) == []


def test_a_part_url_takes_only_its_signed_size(api: APIClient, upload: MediaUpload) -> None:
    url = sign_parts(api, upload.media_id, [1])[1]["url"]
    assert_error(put_bytes(url, payload(PART - 1)), 400, "invalid_input")
    assert put_bytes(url, payload(PART)).status_code == 200
