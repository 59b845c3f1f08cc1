"""The tenant's size limit holds while the bytes arrive, not only at completion: a file of
undeclared size gets a form POST whose policy storage enforces (S3's content-length-range, the
local backend's own bound), the local backend reads no further than a URL allows, an object
over the limit found at completion closes its file, and empty files are never handed on."""

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests import uppy_client
from tests.api.openapi import assert_matches_schema, openapi_document
from tests.conftest import BUCKET, put_bytes
from tests.helpers import (
    AUDIO,
    PHOTO,
    assert_error,
    complete_body,
    initiate,
    object_bytes,
    stored_files,
)
from tests.uppy_client import post_form
from uploads.errors import InvalidInput, TooLarge, UrlInvalid
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage
from uploads.storage import LocalStorage, get_storage
from uploads.storage.local import IncomingObject
from uploads.storage.local_signing import _PUT_SALT

INITIATE = "/v1/catalog/upload/initiate"


def initiate_unsized(api: APIClient, content_type: str = "image/jpeg", **extra: str) -> dict[str, Any]:
    response = api.post(INITIATE, {"artisanId": "art_1", "contentType": content_type, **extra}, format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def form_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {"url": answer["uploadUrl"], "fields": answer["uploadFields"]}


def set_photo_limit(tenant: Tenant, limit: int) -> None:
    tenant.max_photo_bytes = limit
    tenant.save(update_fields=["max_photo_bytes"])


def with_audio(api: APIClient, photo: dict[str, Any]) -> dict[str, Any]:
    """The submission's audio, stored: completion then depends on the photo alone."""
    audio = initiate(api, content_type="audio/ogg", file_size=len(AUDIO), tracking_id=photo["trackingId"])
    assert put_bytes(audio["uploadUrl"], AUDIO, audio["headers"]).status_code == 200
    return {"trackingId": photo["trackingId"], "photoKey": photo["key"], "audioKey": audio["key"]}


def complete(api: APIClient, submission: dict[str, Any]) -> Any:
    return api.post("/v1/catalog/upload/complete", complete_body(submission), format="json")


def kept_objects() -> list[str]:
    return [f for f in stored_files() if f.startswith(("objects/", "meta/"))]


@pytest.fixture
def deletes_in_transaction(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each storage delete, whether it ran inside a database transaction (beyond the one
    each test runs in). Both backends' delete is wrapped."""
    baseline = len(connection.atomic_blocks)
    seen: list[bool] = []
    from uploads.storage.s3 import S3Storage

    for backend in (LocalStorage, S3Storage):
        original = backend.delete

        def delete(self: Any, *, key: str, _original: Any = original) -> None:
            seen.append(len(connection.atomic_blocks) > baseline)
            _original(self, key=key)

        monkeypatch.setattr(backend, "delete", delete)
    return seen


# --- initiate without fileSize: a form bounded by the tenant's limit -----------------------------
def test_initiate_without_file_size_answers_a_form_post(api: APIClient) -> None:
    answer = initiate_unsized(api)
    assert answer["uploadMethod"] == "POST"
    assert answer["uploadUrl"] == "http://testserver/storage/post/"
    assert answer["headers"] == {}
    assert answer["uploadFields"]["key"] == answer["key"]
    assert answer["uploadFields"]["Content-Type"] == "image/jpeg"
    assert {"trackingId", "expiresAt", "mediaId"} <= set(answer)


def test_both_initiate_answers_match_the_schema(api: APIClient) -> None:
    assert_matches_schema(api.post(INITIATE, {"artisanId": "a1", "contentType": "image/png"}), INITIATE, "post")
    sized = api.post(INITIATE, {"artisanId": "a1", "contentType": "image/png", "fileSize": 10})
    assert_matches_schema(sized, INITIATE, "post")
    schemas = openapi_document()["components"]["schemas"]
    properties = schemas["InitiateOutput"]["properties"]
    method = properties["uploadMethod"]["allOf"][0]["$ref"].rsplit("/", 1)[-1]
    assert schemas[method]["enum"] == ["PUT", "POST"]
    assert "uploadMethod" in schemas["InitiateOutput"]["required"]
    assert "uploadFields" in properties and "uploadFields" not in schemas["InitiateOutput"]["required"]


def test_initiate_with_file_size_still_answers_a_put_of_exactly_that_size(api: APIClient) -> None:
    answer = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert answer["uploadMethod"] == "PUT"
    assert "uploadFields" not in answer
    assert_error(put_bytes(answer["uploadUrl"], PHOTO + b"x", answer["headers"]), 400, "invalid_input")
    assert put_bytes(answer["uploadUrl"], PHOTO, answer["headers"]).status_code == 200


def test_local_form_over_the_tenants_limit_is_413_while_it_arrives_and_stores_nothing(
    api: APIClient, tenant: Tenant
) -> None:
    set_photo_limit(tenant, len(PHOTO) - 1)
    answer = initiate_unsized(api)
    assert_error(post_form(form_of(answer), PHOTO), 413, "too_large")
    assert stored_files() == []
    # What fits is taken, by the same form.
    assert post_form(form_of(answer), PHOTO[:-1]).status_code == 204
    assert object_bytes(answer["key"]) == PHOTO[:-1]


def test_local_form_bound_is_the_tenants_limit_for_the_type(api: APIClient, tenant: Tenant) -> None:
    """The limit travels in the signed policy: a 60-byte photo through a 50-byte limit never lands."""
    set_photo_limit(tenant, 50)
    answer = initiate_unsized(api)
    assert_error(post_form(form_of(answer), b"\xff\xd8\xff" + b"x" * 57), 413, "too_large")
    assert kept_objects() == []


def test_local_form_stops_taking_bytes_just_past_its_policys_bound(
    api: APIClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 MiB file through a 1,000-byte form: refused at the first chunk past the bound, the rest
    of the body left unread (the connection is not reused)."""
    taken: list[int] = []
    original = IncomingObject.write

    def write(self: IncomingObject, chunk: bytes) -> None:
        taken.append(len(chunk))
        original(self, chunk)

    monkeypatch.setattr(IncomingObject, "write", write)
    set_photo_limit(tenant, 1000)
    refused = post_form(form_of(initiate_unsized(api)), b"\xff\xd8\xff" + b"x" * (4 * 1024 * 1024))
    assert_error(refused, 413, "too_large")
    assert refused["Connection"] == "close"
    assert sum(taken) <= 1000 + 64 * 1024  # one chunk of the parser's at most
    assert stored_files() == []


def test_s3_form_policy_bounds_the_size_from_1_to_the_tenants_limit(api: APIClient, tenant: Tenant, s3: Any) -> None:
    set_photo_limit(tenant, 3000)
    answer = initiate_unsized(api)
    assert answer["uploadMethod"] == "POST"
    assert answer["uploadUrl"].endswith("/") and BUCKET in answer["uploadUrl"]
    fields = answer["uploadFields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, 3000] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert {"key": answer["key"]} in policy["conditions"]
    assert fields["key"] == answer["key"]


def test_s3_form_post_of_a_file_within_the_limit_completes(api: APIClient, s3: Any) -> None:
    photo = initiate_unsized(api)
    assert post_form(form_of(photo), PHOTO).status_code == 204
    accepted = complete(api, with_audio(api, photo))
    assert accepted.status_code == 202, accepted.content
    assert s3.get_object(Bucket=BUCKET, Key=photo["key"])["Body"].read() == PHOTO


# --- the local PUT without a size: bounded by its URL, checked before reading --------------------
class CountingBody:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.data[self.read_bytes : self.read_bytes + size if size >= 0 else None]
        self.read_bytes += len(chunk)
        return chunk


def unsized_put_token(max_bytes: int) -> str:
    signed = get_storage().presign_put(
        key="tenant_a/art_1/trk/med.jpg", content_type="image/jpeg", size=None, expires_in=60, max_bytes=max_bytes
    )
    return signed.url.rstrip("/").rsplit("/", 1)[-1]


def receive(token: str, body: Any, length: int) -> str:
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    return storage.receive_put(
        token=token, body=body, content_length=length, content_type="image/jpeg", if_none_match="*"
    )


@pytest.mark.once
def test_local_put_without_a_size_refuses_a_body_over_its_bound_before_reading_a_byte() -> None:
    body = CountingBody(b"x" * 101)
    with pytest.raises(TooLarge) as refused:
        receive(unsized_put_token(100), body, 101)
    assert refused.value.details["maxBytes"] == 100
    assert body.read_bytes == 0
    assert kept_objects() == []
    assert not [f for f in stored_files() if f.startswith("tmp/")]


@pytest.mark.once
def test_local_put_without_a_size_reads_no_more_than_its_bound_plus_one_when_the_length_lies() -> None:
    body = CountingBody(b"x" * 10_000)
    with pytest.raises(TooLarge):
        receive(unsized_put_token(100), body, 100)  # declares 100, sends 10,000
    assert body.read_bytes == 101
    assert kept_objects() == []


@pytest.mark.once
def test_local_put_without_a_size_takes_1_to_its_bound() -> None:
    with pytest.raises(InvalidInput):
        receive(unsized_put_token(100), CountingBody(b""), 0)
    assert receive(unsized_put_token(100), CountingBody(b"y" * 100), 100).startswith('"')


@pytest.mark.once
def test_local_put_url_with_neither_size_nor_bound_is_refused() -> None:
    token = signing.dumps({"k": "t/a/k.jpg", "c": "image/jpeg", "s": None, "e": 2**40}, salt=_PUT_SALT, compress=True)
    with pytest.raises(UrlInvalid):
        receive(token, CountingBody(b"x"), 1)


@pytest.mark.once
def test_local_put_without_a_size_must_be_signed_with_a_bound() -> None:
    with pytest.raises(ValueError):
        get_storage().presign_put(key="t/a/k.jpg", content_type="image/jpeg", size=None, expires_in=60)


def test_local_put_over_its_bound_is_a_json_413_that_closes_the_connection(db: None) -> None:
    token = unsized_put_token(10)
    response = Client().put(
        f"/storage/put/{token}", data=b"x" * 11, content_type="image/jpeg", headers={"If-None-Match": "*"}
    )
    assert_error(response, 413, "too_large")
    assert response["Connection"] == "close"
    assert kept_objects() == []


# --- the limit checked again at completion closes the file ---------------------------------------
def test_completion_over_the_limit_is_413_closes_the_file_and_deletes_its_object(
    api: APIClient, tenant: Tenant, deletes_in_transaction: list[bool]
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    submission = with_audio(api, photo)
    set_photo_limit(tenant, len(PHOTO) - 1)  # lowered after the file was started

    error = assert_error(complete(api, submission), 413, "too_large")
    assert error["details"] == {"maxBytes": len(PHOTO) - 1, "size": len(PHOTO), "status": "aborted"}
    media = MediaUpload.objects.get(media_id=photo["mediaId"])
    assert media.status == MediaStatus.ABORTED and media.released_at is not None
    assert Event.objects.get(media=media, action="media.aborted").details["reason"] == "too_large"
    assert get_storage().head(key=photo["key"]) is None
    assert deletes_in_transaction == [False]

    # The same URL stores the bytes again, but they never count: the file is closed.
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    set_photo_limit(tenant, len(PHOTO))
    assert_error(complete(api, submission), 409, "upload_closed")
    assert not OutboxMessage.objects.exists()


def test_s3_object_over_the_limit_closes_its_file_at_completion(
    api: APIClient, tenant: Tenant, s3: Any, deletes_in_transaction: list[bool]
) -> None:
    """moto does not enforce the POST policy (S3 does): completion's check is what remains."""
    set_photo_limit(tenant, len(PHOTO) - 1)
    photo = initiate_unsized(api)
    assert post_form(form_of(photo), PHOTO).status_code == 204
    submission = with_audio(api, photo)

    assert_error(complete(api, submission), 413, "too_large")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=photo["key"]).get("KeyCount") == 0
    assert MediaUpload.objects.get(media_id=photo["mediaId"]).status == MediaStatus.ABORTED
    assert deletes_in_transaction == [False]
    # The form posts again, and the file still does not count.
    assert post_form(form_of(photo), PHOTO[:-1]).status_code == 204
    assert_error(complete(api, submission), 409, "upload_closed")
    assert not OutboxMessage.objects.exists()


def test_resumable_completion_over_the_limit_closes_the_file_too(api: APIClient, tenant: Tenant) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    set_photo_limit(tenant, 1000)
    assert_error(api.post(f"/v1/catalog/uploads/{photo['mediaId']}/complete"), 413, "too_large")
    assert api.get(f"/v1/catalog/uploads/{photo['mediaId']}").json()["status"] == "aborted"


# --- storage deletes happen outside transactions ------------------------------------------------
def close_while_completing(monkeypatch: pytest.MonkeyPatch, media_id: str) -> None:
    """An abort claims the row between completion's check at storage and its record."""
    original = LocalStorage.head

    def head(self: LocalStorage, *, key: str) -> Any:
        found = original(self, key=key)
        MediaUpload.objects.filter(media_id=media_id).update(status=MediaStatus.ABORTED)
        return found

    monkeypatch.setattr(LocalStorage, "head", head)


def test_object_of_a_file_closed_while_completing_is_deleted_after_the_transaction(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, deletes_in_transaction: list[bool]
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    close_while_completing(monkeypatch, photo["mediaId"])
    assert_error(api.post(f"/v1/catalog/uploads/{photo['mediaId']}/complete"), 409, "upload_closed")
    assert kept_objects() == []
    assert deletes_in_transaction == [False]


def test_submission_completion_deletes_an_orphaned_object_after_the_transaction(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, deletes_in_transaction: list[bool]
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    submission = with_audio(api, photo)
    close_while_completing(monkeypatch, photo["mediaId"])
    assert_error(complete(api, submission), 409, "upload_closed")
    assert get_storage().head(key=photo["key"]) is None
    assert deletes_in_transaction and not any(deletes_in_transaction)
    assert not OutboxMessage.objects.exists()


# --- empty files ---------------------------------------------------------------------------------
def store_empty_object(key: str) -> None:
    """What an S3-compatible server that ignores the policy would hold: an empty object."""
    root = Path(settings.UPLOADS_LOCAL_ROOT)
    for path, content in (
        (root / "objects" / key, b""),
        (
            root / "meta" / f"{key}.json",
            b'{"size": 0, "etag": "\\"d41d8cd98f00b204e9800998ecf8427e\\"", "contentType": "image/jpeg"}',
        ),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_local_empty_object_is_refused_at_completion_and_removed_so_the_file_can_be_sent_again(
    api: APIClient, deletes_in_transaction: list[bool], django_capture_on_commit_callbacks: Any
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    submission = with_audio(api, photo)
    store_empty_object(photo["key"])

    error = assert_error(complete(api, submission), 409, "object_missing")
    assert error["details"]["minBytes"] == 1 and error["details"]["size"] == 0
    assert get_storage().head(key=photo["key"]) is None
    assert deletes_in_transaction == [False]
    assert MediaUpload.objects.get(media_id=photo["mediaId"]).status == MediaStatus.PENDING
    assert not OutboxMessage.objects.exists()

    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(api, submission).status_code == 202


def test_local_empty_form_post_is_refused_by_the_form(api: APIClient) -> None:
    photo = initiate_unsized(api)
    assert_error(post_form(form_of(photo), b""), 400, "invalid_input")
    assert kept_objects() == []


def test_s3_empty_object_is_refused_at_completion_and_the_form_can_post_again(
    api: APIClient, s3: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """S3 refuses an empty file by content-length-range; moto lets it through."""
    photo = initiate_unsized(api)
    assert post_form(form_of(photo), b"").status_code == 204
    submission = with_audio(api, photo)
    assert_error(complete(api, submission), 409, "object_missing")
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=photo["key"]).get("KeyCount") == 0
    assert not OutboxMessage.objects.exists()

    assert post_form(form_of(photo), PHOTO).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(api, submission).status_code == 202


def test_open_multipart_upload_of_empty_parts_is_refused_before_assembly(tenant: Tenant) -> None:
    """Stock Uppy's multipart route (parts of any size): one empty part is no file. Refused
    while the parts are still there, so the same upload can send its bytes and complete."""
    uppy = uppy_client.staff_client(tenant)
    upload = uppy_client.created(uppy)
    signed = uppy_client.sign(uppy, upload, 1).json()["url"]
    empty = Client().put(urlsplit(signed).path + "?" + urlsplit(signed).query, data=b"", CONTENT_LENGTH="0")
    assert empty.status_code == 200, empty.content
    refused = uppy_client.complete(uppy, upload, [(1, empty["ETag"])])
    assert assert_error(refused, 409, "object_missing")["details"]["minBytes"] == 1
    assert kept_objects() == []
    parts = uppy_client.upload_parts(uppy, upload, [AUDIO])
    assert uppy_client.complete(uppy, upload, parts).status_code == 200
