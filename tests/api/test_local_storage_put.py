"""The local backend's receiving end, /storage/put/<token>: only what a URL signs may be stored,
and every refusal is a JSON error in the API's shape."""

import io
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import (
    PART,
    PHOTO,
    assert_error,
    create_upload,
    object_bytes,
    payload,
    quoted_md5,
    sign_parts,
    stored_files,
)
from uploads.models import MediaUpload
from uploads.storage import get_storage, local_signing


@pytest.fixture
def single(api: APIClient) -> dict[str, Any]:
    """A single-PUT photo upload, signed for exactly len(PHOTO) bytes of image/jpeg."""
    response = api.post(
        "/v1/catalog/upload/initiate",
        {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": len(PHOTO)},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def part_one(api: APIClient) -> dict[str, Any]:
    """Part 1 (PART bytes) of an open multipart upload, signed."""
    created = create_upload(api)
    return {**sign_parts(api, created["mediaId"], [1])[1], "mediaId": created["mediaId"]}


def path_of(url: str) -> str:
    return urlsplit(url).path


def tamper(token: str, at: int) -> str:
    replacement = "A" if token[at] != "A" else "B"
    return token[:at] + replacement + token[at + 1 :]


def objects_under_keys() -> list[str]:
    return [f for f in stored_files() if f.startswith(("objects/", "meta/"))]


# --- what a valid PUT gets -----------------------------------------------------------------------
def test_single_put_answers_with_the_quoted_md5_as_etag(single: dict[str, Any]) -> None:
    response = put_bytes(single["uploadUrl"], PHOTO, single["headers"])
    assert response.status_code == 200
    assert response["ETag"] == quoted_md5(PHOTO)
    assert object_bytes(single["key"]) == PHOTO


def test_part_put_answers_with_the_quoted_md5_as_etag(part_one: dict[str, Any]) -> None:
    data = payload(PART, seed=3)
    response = put_bytes(part_one["url"], data, part_one["headers"])
    assert response.status_code == 200
    assert response["ETag"] == quoted_md5(data)


def test_part_put_again_replaces_the_earlier_bytes(api: APIClient, part_one: dict[str, Any]) -> None:
    first, second = payload(PART, seed=4), payload(PART, seed=5)
    assert put_bytes(part_one["url"], first).status_code == 200
    assert put_bytes(part_one["url"], second).status_code == 200
    progress = api.get(f"/v1/catalog/uploads/{part_one['mediaId']}").json()
    assert progress["completedParts"] == [{"partNumber": 1, "size": PART, "etag": quoted_md5(second)}]
    media = MediaUpload.objects.get(media_id=part_one["mediaId"])
    part_files = [f for f in stored_files() if f.startswith(f"multipart/{media.multipart_upload_id}/00001.")]
    assert part_files == [f"multipart/{media.multipart_upload_id}/00001.{quoted_md5(second).strip(chr(34))}"]


def test_single_put_url_writes_its_object_once(single: dict[str, Any]) -> None:
    other = b"\xff\xd8\xff" + payload(len(PHOTO) - 3, seed=6)
    assert put_bytes(single["uploadUrl"], PHOTO, single["headers"]).status_code == 200
    replay = put_bytes(single["uploadUrl"], other, single["headers"])
    assert replay.status_code == 412
    assert replay.json()["error"]["code"] == "already_stored"
    assert object_bytes(single["key"]) == PHOTO
    assert get_storage().head(key=single["key"]).etag == quoted_md5(PHOTO)  # type: ignore[union-attr]
    assert not list((get_storage().root / "tmp").iterdir())  # type: ignore[attr-defined]


def test_single_put_without_the_signed_if_none_match_is_403_as_on_s3(single: dict[str, Any]) -> None:
    response = put_bytes(single["uploadUrl"], PHOTO, {"Content-Type": "image/jpeg"})
    assert_error(response, 403, "url_invalid")
    assert objects_under_keys() == []


def test_content_type_parameters_are_allowed_on_a_single_put(single: dict[str, Any]) -> None:
    response = put_bytes(
        single["uploadUrl"], PHOTO, {"Content-Type": "image/jpeg; charset=binary", "If-None-Match": "*"}
    )
    assert response.status_code == 200, response.content


# --- expiry and tampering ------------------------------------------------------------------------
def test_url_past_its_expiry_is_403_url_expired(
    single: dict[str, Any], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    later = time.time() + settings.UPLOADS_URL_EXPIRY_SECONDS + 1
    monkeypatch.setattr(local_signing, "time", SimpleNamespace(time=lambda: later))
    assert_error(put_bytes(single["uploadUrl"], PHOTO, single["headers"]), 403, "url_expired")
    assert objects_under_keys() == []


def test_url_just_before_its_expiry_still_works(
    single: dict[str, Any], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    later = time.time() + settings.UPLOADS_URL_EXPIRY_SECONDS - 60
    monkeypatch.setattr(local_signing, "time", SimpleNamespace(time=lambda: later))
    assert put_bytes(single["uploadUrl"], PHOTO, single["headers"]).status_code == 200


def test_part_url_signed_already_expired_is_403_url_expired(api: APIClient, part_one: dict[str, Any]) -> None:
    media = MediaUpload.objects.get(media_id=part_one["mediaId"])
    signed = get_storage().presign_parts(
        key=media.object_key, upload_id=media.multipart_upload_id, parts=[(1, PART)], expires_in=-1
    )[0]
    assert_error(put_bytes(f"http://testserver{signed.url}", payload(PART)), 403, "url_expired")
    assert api.get(f"/v1/catalog/uploads/{media.media_id}").json()["completedParts"] == []


@pytest.mark.parametrize("at", [1, 20, -30, -1])
def test_tampered_token_is_403_url_invalid(single: dict[str, Any], at: int) -> None:
    path = path_of(single["uploadUrl"])
    token = path.rsplit("/", 1)[1]
    response = put_bytes(f"http://testserver/storage/put/{tamper(token, at)}", PHOTO, single["headers"])
    assert_error(response, 403, "url_invalid")
    assert objects_under_keys() == []


@pytest.mark.parametrize(
    ("token", "status"),
    [("abc", 403), ("a" * 5000, 403), ("e30:1:x", 403), ("..%2F..%2Fetc", 404), ("", 404), ("a/b", 404)],
)
def test_made_up_token_is_a_json_error(client: Client, token: str, status: int) -> None:
    response = client.put(f"/storage/put/{token}", data=PHOTO, content_type="image/jpeg")
    assert_error(response, status, "url_invalid" if status == 403 else "not_found")
    assert objects_under_keys() == []


def test_token_signed_for_another_purpose_is_403(client: Client) -> None:
    """Claims of the right form, signed with the portal's key but not the URL salt, for a key of
    the client's choosing: not a way to write anywhere."""
    claims = {"k": "tenant_b/art_1/trk_0/med_0.jpg", "c": "image/jpeg", "s": len(PHOTO), "e": time.time() + 60}
    token = signing.dumps(claims, compress=True)
    assert_error(client.put(f"/storage/put/{token}", data=PHOTO, content_type="image/jpeg"), 403, "url_invalid")
    assert objects_under_keys() == []


def test_token_signed_with_another_secret_is_403(single: dict[str, Any], settings: Any) -> None:
    ours = settings.SECRET_KEY
    settings.SECRET_KEY = "another-deployment-secret-key"
    forged = get_storage().presign_put(key=single["key"], content_type="image/jpeg", size=len(PHOTO), expires_in=60)
    settings.SECRET_KEY = ours
    response = put_bytes(f"http://testserver{forged.url}", PHOTO, single["headers"])
    assert_error(response, 403, "url_invalid")
    assert objects_under_keys() == []


# --- lengths and types -------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [-1, 1, -len(PHOTO) + 1])
def test_body_of_another_size_than_signed_is_400(single: dict[str, Any], delta: int) -> None:
    data = (PHOTO * 2)[: len(PHOTO) + delta]
    error = assert_error(put_bytes(single["uploadUrl"], data, single["headers"]), 400, "invalid_input")
    assert error["details"] == {"expectedSize": len(PHOTO), "contentLength": len(data)}
    assert objects_under_keys() == []


@pytest.mark.parametrize("delta", [-1, 1])
def test_part_of_another_size_than_signed_is_400(api: APIClient, part_one: dict[str, Any], delta: int) -> None:
    error = assert_error(put_bytes(part_one["url"], payload(PART + delta)), 400, "invalid_input")
    assert error["details"]["expectedSize"] == PART
    assert api.get(f"/v1/catalog/uploads/{part_one['mediaId']}").json()["completedParts"] == []


def put_with_short_body(url: str, declared: int, body: bytes, content_type: str) -> Any:
    """A client that declares `declared` bytes and sends fewer, then hangs up."""
    stream: dict[str, Any] = {"wsgi.input": io.BytesIO(body)}
    return Client().generic(
        "PUT",
        path_of(url),
        b"",
        CONTENT_LENGTH=str(declared),
        CONTENT_TYPE=content_type,
        HTTP_IF_NONE_MATCH="*",
        **stream,
    )


def test_single_body_shorter_than_its_content_length_is_400_and_leaves_nothing(single: dict[str, Any]) -> None:
    response = put_with_short_body(single["uploadUrl"], len(PHOTO), PHOTO[:-100], "image/jpeg")
    error = assert_error(response, 400, "invalid_input")
    assert error["details"] == {"missingBytes": 100}
    assert objects_under_keys() == []
    assert [f for f in stored_files() if "/.tmp-" in f or f.startswith("tmp/")] == []


def test_part_body_shorter_than_its_content_length_is_400_and_leaves_nothing(
    api: APIClient, part_one: dict[str, Any]
) -> None:
    response = put_with_short_body(part_one["url"], PART, payload(PART - 1), "application/octet-stream")
    assert_error(response, 400, "invalid_input")
    assert api.get(f"/v1/catalog/uploads/{part_one['mediaId']}").json()["completedParts"] == []
    media = MediaUpload.objects.get(media_id=part_one["mediaId"])
    assert stored_files() == [f"multipart/{media.multipart_upload_id}/upload.json"]


def test_missing_content_length_is_411(single: dict[str, Any]) -> None:
    response = Client().generic("PUT", path_of(single["uploadUrl"]), b"", CONTENT_TYPE="image/jpeg")
    assert_error(response, 411, "length_required")


def test_content_length_that_is_not_a_number_is_400(single: dict[str, Any]) -> None:
    response = Client().generic(
        "PUT", path_of(single["uploadUrl"]), b"", CONTENT_TYPE="image/jpeg", CONTENT_LENGTH="12abc"
    )
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize("content_type", ["image/png", "text/html", "application/octet-stream", ""])
def test_single_put_with_another_content_type_than_signed_is_403(single: dict[str, Any], content_type: str) -> None:
    response = Client().put(path_of(single["uploadUrl"]), data=PHOTO, content_type=content_type)
    error = assert_error(response, 403, "url_invalid")
    assert error["details"] == {"contentType": "image/jpeg"}
    assert objects_under_keys() == []


# --- closed uploads and other methods -------------------------------------------------------------
def test_part_put_after_abort_is_404(api: APIClient, part_one: dict[str, Any]) -> None:
    assert api.delete(f"/v1/catalog/uploads/{part_one['mediaId']}").status_code == 200
    assert_error(put_bytes(part_one["url"], payload(PART)), 404, "not_found")
    assert stored_files() == []


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PATCH", "HEAD"])
def test_other_methods_are_405_in_the_error_shape(single: dict[str, Any], method: str) -> None:
    response = Client().generic(method, path_of(single["uploadUrl"]), PHOTO, content_type="image/jpeg")
    assert response.status_code == 405
    assert response["Allow"] == "PUT"
    if method != "HEAD":  # a HEAD answer has no body
        assert_error(response, 405, "method_not_allowed")
    assert objects_under_keys() == []
