"""Tenancy: a key sees only its own tenant's submissions and uploads. Another tenant's ids get
the very answer a missing id gets (404) on every endpoint, and change nothing."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create, api_key_revoke
from tests.helpers import (
    MULTIPART_SIZE,
    PART,
    UNKNOWN_MEDIA_ID,
    UNKNOWN_TRACKING_ID,
    assert_error,
    complete_body,
    create_upload,
    payload,
    put_part,
    quoted_md5,
    row_counts,
    sign_parts,
    stored_files,
    uploaded_submission,
)
from uploads.models import MediaStatus, MediaUpload, OutboxMessage, Stage, Submission, UploadPart

ARTISAN = {"artisanId": "art_1"}


@pytest.fixture
def theirs(api: APIClient) -> dict[str, Any]:
    """Tenant A's submission: a photo and audio at storage, plus an open multipart upload with a
    part already sent. Tests call in as tenant B."""
    submission = uploaded_submission(api)
    multipart = create_upload(api, tracking_id=submission["trackingId"])
    signed = sign_parts(api, multipart["mediaId"], [1, 2])
    put_part(signed[1], payload(PART))
    return {**submission, "mediaId": multipart["mediaId"], "part2": signed[2]}


def tenant_a_state() -> dict[str, Any]:
    return {
        "rows": row_counts(),
        "stages": list(Submission.objects.values_list("stage", flat=True)),
        "statuses": sorted(MediaUpload.objects.values_list("media_id", "status")),
        "files": stored_files(),
    }


def foreign_requests(theirs: dict[str, Any]) -> list[tuple[str, str, Any]]:
    media, tracking = theirs["mediaId"], theirs["trackingId"]
    return [
        ("get", f"/v1/catalog/status/{tracking}", None),
        ("post", "/v1/catalog/upload/complete", complete_body(theirs)),
        ("post", "/v1/catalog/upload/initiate", {**ARTISAN, "contentType": "image/png", "trackingId": tracking}),
        (
            "post",
            "/v1/catalog/uploads",
            {**ARTISAN, "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE, "trackingId": tracking},
        ),
        ("get", f"/v1/catalog/uploads/{media}", None),
        ("get", f"/v1/catalog/uploads/{media}?urls=5", None),
        ("delete", f"/v1/catalog/uploads/{media}", None),
        ("post", f"/v1/catalog/uploads/{media}/parts", {"partNumbers": [2]}),
        ("put", f"/v1/catalog/uploads/{media}/parts/2", {"etag": '"abc"', "size": PART}),
        ("post", f"/v1/catalog/uploads/{media}/complete", None),
        ("get", f"/v1/catalog/uploads/{theirs['photoMediaId']}", None),
        ("post", f"/v1/catalog/uploads/{theirs['photoMediaId']}/complete", None),
        ("delete", f"/v1/catalog/uploads/{theirs['audioMediaId']}", None),
    ]


def test_another_tenants_ids_are_404_on_every_endpoint_and_change_nothing(
    theirs: dict[str, Any], other_api: APIClient
) -> None:
    before = tenant_a_state()
    for method, path, body in foreign_requests(theirs):
        response = getattr(other_api, method)(path, body, format="json")
        assert_error(response, 404, "not_found")
    assert tenant_a_state() == before


def test_another_tenants_id_gets_exactly_the_answer_of_a_missing_one(
    theirs: dict[str, Any], other_api: APIClient
) -> None:
    """Nothing in the answer tells B that A's id exists: only the echoed id differs."""
    foreign = other_api.get(f"/v1/catalog/uploads/{theirs['mediaId']}").json()
    missing = other_api.get(f"/v1/catalog/uploads/{UNKNOWN_MEDIA_ID}").json()
    assert foreign["error"]["message"].replace(theirs["mediaId"], "ID") == missing["error"]["message"].replace(
        UNKNOWN_MEDIA_ID, "ID"
    )
    assert foreign["error"]["details"] == {"mediaId": theirs["mediaId"]}
    foreign = other_api.get(f"/v1/catalog/status/{theirs['trackingId']}").json()
    missing = other_api.get(f"/v1/catalog/status/{UNKNOWN_TRACKING_ID}").json()
    assert foreign["error"]["code"] == missing["error"]["code"] == "not_found"
    assert foreign["error"]["details"] == {"trackingId": theirs["trackingId"]}


def test_the_owner_still_reaches_everything_the_other_tenant_could_not(
    theirs: dict[str, Any], api: APIClient, other_api: APIClient
) -> None:
    for method, path, body in foreign_requests(theirs):
        getattr(other_api, method)(path, body, format="json")
    assert api.get(f"/v1/catalog/status/{theirs['trackingId']}").status_code == 200
    state = api.get(f"/v1/catalog/uploads/{theirs['mediaId']}").json()
    assert state["status"] == "pending"
    assert [p["partNumber"] for p in state["completedParts"]] == [1]
    put_part(theirs["part2"], payload(PART, seed=1))


def test_completing_my_submission_with_another_tenants_keys_is_400(
    theirs: dict[str, Any], other_api: APIClient
) -> None:
    mine = uploaded_submission(other_api)
    before = row_counts()
    for field in ("photoKey", "audioKey"):
        response = other_api.post(
            "/v1/catalog/upload/complete", complete_body(mine, **{field: theirs[field]}), format="json"
        )
        error = assert_error(response, 400, "invalid_input")
        assert error["details"]["field"] == field
    assert row_counts() == before
    assert set(Submission.objects.values_list("stage", flat=True)) == {Stage.INITIATED}
    assert OutboxMessage.objects.count() == 0


def test_each_tenant_lists_only_its_own_upload_parts(theirs: dict[str, Any], other_api: APIClient) -> None:
    """B's own upload and A's have separate parts and progress, though B's client reports parts too."""
    mine = create_upload(other_api)
    response = other_api.put(
        f"/v1/catalog/uploads/{mine['mediaId']}/parts/1", {"etag": '"abc"', "size": PART}, format="json"
    )
    assert response.status_code == 200
    assert other_api.get(f"/v1/catalog/uploads/{mine['mediaId']}").json()["completedParts"] == []
    assert UploadPart.objects.filter(media__submission__tenant_id="tenant_b").count() == 1
    assert UploadPart.objects.filter(media__submission__tenant_id="tenant_a").count() == 0


# --- tenantId in the body ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/catalog/upload/initiate", {**ARTISAN, "contentType": "image/jpeg", "fileSize": 100}),
        ("/v1/catalog/uploads", {**ARTISAN, "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE}),
    ],
)
def test_tenant_id_of_another_tenant_in_the_body_is_403_and_creates_nothing(
    api: APIClient, other_tenant: Tenant, path: str, body: dict[str, Any]
) -> None:
    for claimed in (other_tenant.id, "tenant_zzz", "TENANT_A"):
        error = assert_error(api.post(path, {**body, "tenantId": claimed}, format="json"), 403, "tenant_mismatch")
        assert error["details"] == {"field": "tenantId"}
    assert row_counts()["Submission"] == 0
    assert stored_files() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/catalog/upload/initiate", {**ARTISAN, "contentType": "image/jpeg", "fileSize": 100}),
        ("/v1/catalog/uploads", {**ARTISAN, "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE}),
    ],
)
def test_tenant_id_of_the_keys_own_tenant_is_accepted(
    api: APIClient, other_api: APIClient, path: str, body: dict[str, Any]
) -> None:
    mine = api.post(path, {**body, "tenantId": "tenant_a"}, format="json")
    assert mine.status_code == 201, mine.content
    assert mine.json()["key"].startswith("tenant_a/")
    theirs = other_api.post(path, {**body, "tenantId": "tenant_b"}, format="json")
    assert theirs.status_code == 201, theirs.content
    assert theirs.json()["key"].startswith("tenant_b/")


# --- credentials ---------------------------------------------------------------------------------
def test_x_api_key_header_authenticates_as_the_keys_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    for owner in (tenant, other_tenant):
        _, raw = api_key_create(tenant=owner)
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        response = client.post(
            "/v1/catalog/upload/initiate", {**ARTISAN, "contentType": "image/jpeg", "fileSize": 10}, format="json"
        )
        assert response.status_code == 201, response.content
        assert response.json()["key"].startswith(f"{owner.id}/")
        assert Submission.objects.get(tracking_id=response.json()["trackingId"]).tenant_id == owner.id


def test_revoked_key_is_401_while_the_tenants_other_keys_still_work(api: APIClient, tenant: Tenant) -> None:
    key, raw = api_key_create(tenant=tenant)
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {**ARTISAN, "contentType": "image/jpeg", "fileSize": 10}
    assert revoked.post("/v1/catalog/upload/initiate", body, format="json").status_code == 201
    api_key_revoke(api_key=key)
    assert_error(revoked.post("/v1/catalog/upload/initiate", body, format="json"), 401, "authentication_failed")
    x_header = APIClient()
    x_header.credentials(HTTP_X_API_KEY=raw)
    assert_error(x_header.get(f"/v1/catalog/status/{UNKNOWN_TRACKING_ID}"), 401, "authentication_failed")
    assert api.post("/v1/catalog/upload/initiate", body, format="json").status_code == 201
    assert Submission.objects.count() == 2


# --- object keys -------------------------------------------------------------------------------------
def test_object_keys_and_stored_bytes_live_under_the_keys_tenant(
    api: APIClient, other_api: APIClient, theirs: dict[str, Any]
) -> None:
    mine = uploaded_submission(other_api)
    for key in (theirs["photoKey"], theirs["audioKey"]):
        assert key.startswith(f"tenant_a/art_1/{theirs['trackingId']}/")
    for key in (mine["photoKey"], mine["audioKey"]):
        assert key.startswith(f"tenant_b/art_1/{mine['trackingId']}/")
    objects = [f for f in stored_files() if f.startswith("objects/")]
    assert sorted(objects) == sorted(
        f"objects/{k}" for k in (theirs["photoKey"], theirs["audioKey"], mine["photoKey"], mine["audioKey"])
    )
    multipart = MediaUpload.objects.get(media_id=theirs["mediaId"])
    assert multipart.object_key.startswith("tenant_a/")
    assert multipart.status == MediaStatus.PENDING


def test_same_artisan_id_in_two_tenants_never_shares_a_key_or_submission(api: APIClient, other_api: APIClient) -> None:
    a = uploaded_submission(api)
    b = uploaded_submission(other_api)
    assert a["trackingId"] != b["trackingId"]
    assert a["photoKey"].split("/", 1)[0] == "tenant_a"
    assert b["photoKey"].split("/", 1)[0] == "tenant_b"
    assert_error(other_api.get(f"/v1/catalog/status/{a['trackingId']}"), 404, "not_found")
    assert_error(api.get(f"/v1/catalog/status/{b['trackingId']}"), 404, "not_found")


def test_recording_a_part_of_another_tenants_upload_is_404_and_records_nothing(
    theirs: dict[str, Any], other_api: APIClient
) -> None:
    response = other_api.put(
        f"/v1/catalog/uploads/{theirs['mediaId']}/parts/1", {"etag": quoted_md5(b"x"), "size": PART}, format="json"
    )
    assert_error(response, 404, "not_found")
    assert UploadPart.objects.count() == 0
