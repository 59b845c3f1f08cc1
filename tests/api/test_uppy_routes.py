"""Companion's S3 routes under /uppy/s3/, called as stock Uppy calls them (plain fetch, the
session cookie, no CSRF token), on the local backend and on S3 (moto in-process): keys are the
portal's, (uploadId, key) pairs are the caller's own, parts are judged at storage, cross-site
requests are refused, and what Uppy uploads completes through the v1 API."""

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import Membership, Tenant
from tests.conftest import put_bytes
from tests.helpers import (
    AUDIO,
    PART,
    PHOTO,
    assert_error,
    object_bytes,
    payload,
    quoted_md5,
    row_counts,
    s3_multipart_etag,
    stored_files,
)
from tests.uppy_client import (
    ORIGIN,
    abort,
    complete,
    create,
    created,
    link_client,
    list_parts,
    params,
    post_form,
    put_part,
    sign,
    signed_form,
    staff_client,
    tracking_of,
    upload_parts,
    v1_complete,
)
from uploads.keys import MEDIA_ID_PATTERN, TRACKING_ID_PATTERN
from uploads.models import Event, MediaStatus, MediaUpload, Strategy

KEY_RE = rf"tenant_a/art_1/{TRACKING_ID_PATTERN}/{MEDIA_ID_PATTERN}"


@pytest.fixture
def uppy(tenant: Tenant) -> Client:
    return staff_client(tenant)


@pytest.fixture
def other_uppy(other_tenant: Tenant) -> Client:
    """Staff of the second tenant only."""
    return staff_client(other_tenant, username="other-operator")


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3")
    return str(request.param)


def stored_object(key: str, backend: str, s3: Any = None) -> bytes:
    if backend == "local":
        return object_bytes(key)
    from tests.conftest import BUCKET

    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


# --- the whole journey --------------------------------------------------------------------------
def test_a_posted_photo_and_a_multipart_audio_complete_the_submission_byte_identical(
    uppy: Client, backend: str, request: pytest.FixtureRequest
) -> None:
    s3 = request.getfixturevalue("s3") if backend == "s3" else None
    form = signed_form(uppy)
    photo_key = form["fields"]["key"]
    posted = post_form(form, PHOTO)
    assert posted.status_code == 204, posted.content
    if backend == "local":  # moto answers a form POST without one; S3 sends it
        assert posted.headers["ETag"] == quoted_md5(PHOTO)

    # The second file names the first one's submission in its metadata, as the page does.
    audio = payload(2 * PART + 1234, seed=7)
    chunks = [audio[:PART], audio[PART : 2 * PART], audio[2 * PART :]]
    upload = created(uppy, trackingId=tracking_of(photo_key))
    assert tracking_of(upload["key"]) == tracking_of(photo_key)
    parts = upload_parts(uppy, upload, chunks)
    done = complete(uppy, upload, parts)
    assert done.status_code == 200, done.content
    media = MediaUpload.objects.get(object_key=upload["key"])
    assert done.json() == {"location": f"{ORIGIN}/v1/catalog/uploads/{media.media_id}", "key": upload["key"]}
    assert media.etag == s3_multipart_etag(chunks)

    accepted = v1_complete(uppy, tracking_of(photo_key), photo_key, upload["key"])
    assert accepted.status_code == 202, accepted.content
    assert stored_object(photo_key, backend, s3) == PHOTO
    assert stored_object(upload["key"], backend, s3) == audio


def test_keys_are_the_portals_own_with_the_extension_of_the_content_type(uppy: Client) -> None:
    form = signed_form(uppy, "image/png")
    assert form["method"] == "POST"
    assert form["url"] == f"{ORIGIN}/storage/post/"  # Uppy reports url + key as the location
    key = form["fields"]["key"]
    assert "holiday" not in key and ".php" not in key
    assert re.fullmatch(KEY_RE + r"\.png", key)
    upload = created(uppy, "audio/webm;codecs=opus")
    assert re.fullmatch(KEY_RE + r"\.webm", upload["key"])
    assert MediaUpload.objects.get(object_key=upload["key"]).content_type == "audio/webm"


def test_s3_form_post_policy_binds_type_and_a_size_range_up_to_the_tenants_limit(
    uppy: Client, tenant: Tenant, s3: Any
) -> None:
    tenant.max_photo_bytes = 3000
    tenant.save()
    form = signed_form(uppy)
    assert form["url"].endswith("/")
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert ["content-length-range", 1, 3000] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    assert {"key": form["fields"]["key"]} in policy["conditions"]
    assert form["fields"]["Content-Type"] == "image/jpeg"


def test_an_object_larger_than_the_limit_at_s3_is_refused_at_completion_and_deleted(
    uppy: Client, tenant: Tenant, s3: Any
) -> None:
    """moto does not enforce POST policies (S3 does, with EntityTooLarge): completion still
    checks the object against the tenant's limit, so the size rule holds either way."""
    tenant.max_photo_bytes = len(PHOTO) - 1
    tenant.save()
    form = signed_form(uppy)
    assert post_form(form, PHOTO).status_code == 204
    upload = created(uppy, trackingId=tracking_of(form["fields"]["key"]))
    assert complete(uppy, upload, upload_parts(uppy, upload, [AUDIO])).status_code == 200
    refused = v1_complete(uppy, tracking_of(form["fields"]["key"]), form["fields"]["key"], upload["key"])
    assert_error(refused, 413, "too_large")
    assert s3.list_objects_v2(Bucket="raw-media-test", Prefix=form["fields"]["key"]).get("KeyCount") == 0


def test_an_empty_object_at_s3_is_refused_at_completion(uppy: Client, s3: Any) -> None:
    """S3 refuses an empty file by the policy's content-length-range; completion refuses one too,
    should an S3-compatible server (moto) have let it through."""
    form = signed_form(uppy)
    assert post_form(form, b"").status_code == 204
    upload = created(uppy, trackingId=tracking_of(form["fields"]["key"]))
    assert complete(uppy, upload, upload_parts(uppy, upload, [AUDIO])).status_code == 200
    refused = v1_complete(uppy, tracking_of(upload["key"]), form["fields"]["key"], upload["key"])
    assert_error(refused, 409, "object_missing")


# --- the local backend's form POST ----------------------------------------------------------------
def test_local_form_post_over_the_policys_size_is_413_and_stores_nothing(uppy: Client, tenant: Tenant) -> None:
    tenant.max_photo_bytes = len(PHOTO) - 1
    tenant.save()
    form = signed_form(uppy)
    assert_error(post_form(form, PHOTO), 413, "too_large")
    assert stored_files() == []
    assert post_form(form, PHOTO[:-1]).status_code == 204


def test_local_form_post_of_an_empty_file_is_refused(uppy: Client) -> None:
    form = signed_form(uppy)
    assert_error(post_form(form, b""), 400)
    assert [f for f in stored_files() if not f.startswith("tmp/")] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("key", "tenant_a/art_1/other.jpg"), ("Content-Type", "image/png"), ("policy", "forged")],
)
def test_local_form_post_refuses_a_field_its_policy_does_not_sign(uppy: Client, field: str, value: str) -> None:
    form = signed_form(uppy)
    form["fields"][field] = value
    assert_error(post_form(form, PHOTO), 403)
    assert stored_files() == []


def test_local_form_post_creates_once(uppy: Client) -> None:
    form = signed_form(uppy)
    assert post_form(form, PHOTO).status_code == 204
    assert_error(post_form(form, b"\xff\xd8\xff other bytes"), 412, "already_stored")
    assert object_bytes(form["fields"]["key"]) == PHOTO


def test_local_form_post_without_a_file_field_is_400(uppy: Client) -> None:
    form = signed_form(uppy)
    parts = urlsplit(form["url"])
    assert_error(Client().post(parts.path, form["fields"]), 400)


# --- multipart: parts judged at storage ---------------------------------------------------------
def test_parts_of_any_size_complete_and_record_what_storage_holds(uppy: Client, backend: str) -> None:
    chunks = [payload(PART + 500, seed=1), payload(PART, seed=2), payload(10, seed=3)]
    upload = created(uppy)
    media = MediaUpload.objects.get(object_key=upload["key"])
    assert (media.strategy, media.declared_size, media.part_size, media.part_count) == (
        Strategy.MULTIPART,
        None,
        None,
        None,
    )
    parts = upload_parts(uppy, upload, chunks)
    listed = list_parts(uppy, upload)
    assert listed.status_code == 200
    assert listed.json() == [
        {"PartNumber": n, "Size": len(c), "ETag": quoted_md5(c)} for n, c in enumerate(chunks, start=1)
    ]
    # The v1 progress endpoint reads the same upload: no plan, so nothing is known to be pending.
    progress = uppy.get(f"/v1/catalog/uploads/{media.media_id}")
    assert progress.status_code == 200, progress.content
    assert (progress.json()["bytesUploaded"], progress.json()["pendingParts"]) == (sum(map(len, chunks)), [])

    assert complete(uppy, upload, parts).status_code == 200
    media.refresh_from_db()
    assert (media.status, media.size, media.declared_size, media.part_size, media.part_count) == (
        MediaStatus.UPLOADED,
        2 * PART + 510,
        2 * PART + 510,
        PART + 500,
        3,
    )
    assert complete(uppy, upload, parts).status_code == 200  # a repeat changes nothing
    assert Event.objects.filter(media=media, action="media.uploaded").count() == 1


def test_status_reports_an_uppy_upload_before_and_after_completion(uppy: Client) -> None:
    upload = created(uppy)
    tracking_id = tracking_of(upload["key"])
    before = uppy.get(f"/v1/catalog/status/{tracking_id}")
    assert before.status_code == 200, before.content
    [file] = before.json()["files"]
    assert (file["status"], file["strategy"], file["fileSize"]) == ("pending", "multipart", None)
    complete(uppy, upload, upload_parts(uppy, upload, [AUDIO]))
    [file] = uppy.get(f"/v1/catalog/status/{tracking_id}").json()["files"]
    assert (file["status"], file["fileSize"], file["bytesRecorded"]) == ("uploaded", len(AUDIO), len(AUDIO))


def test_the_v1_part_endpoints_serve_an_uppy_upload_without_a_plan(uppy: Client, other_uppy: Client) -> None:
    upload = created(uppy)
    media = MediaUpload.objects.get(object_key=upload["key"])
    signed = uppy.post(f"/v1/catalog/uploads/{media.media_id}/parts", {"partNumbers": [1, 10000]}, "application/json")
    assert signed.status_code == 200, signed.content
    assert [(p["partNumber"], p["size"]) for p in signed.json()["parts"]] == [(1, None), (10000, None)]
    data = payload(PART + 3, seed=8)
    etag = put_bytes(signed.json()["parts"][0]["url"], data).headers["ETag"]
    noted = uppy.put(
        f"/v1/catalog/uploads/{media.media_id}/parts/1", {"etag": etag, "size": len(data)}, "application/json"
    )
    assert noted.status_code == 200, noted.content
    assert_error(
        uppy.post(f"/v1/catalog/uploads/{media.media_id}/parts", {"partNumbers": [10001]}, "application/json"), 400
    )
    assert_error(
        other_uppy.post(f"/v1/catalog/uploads/{media.media_id}/parts", {"partNumbers": [1]}, "application/json"), 404
    )
    done = uppy.post(f"/v1/catalog/uploads/{media.media_id}/complete")
    assert done.status_code == 200, done.content
    assert object_bytes(upload["key"]) == data


def test_the_v1_complete_finishes_an_uppy_multipart_upload_uppy_never_completed(uppy: Client, backend: str) -> None:
    form = signed_form(uppy)
    post_form(form, PHOTO)
    upload = created(uppy, trackingId=tracking_of(form["fields"]["key"]))
    upload_parts(uppy, upload, [payload(PART, seed=4), payload(99, seed=5)])
    accepted = v1_complete(uppy, tracking_of(upload["key"]), form["fields"]["key"], upload["key"])
    assert accepted.status_code == 202, accepted.content
    assert MediaUpload.objects.get(object_key=upload["key"]).part_count == 2


def test_complete_with_a_gap_is_409_listing_the_missing_parts(uppy: Client, backend: str) -> None:
    upload = created(uppy)
    parts = [(n, put_part(uppy, upload, n, payload(PART, seed=n))) for n in (1, 3)]
    error = assert_error(complete(uppy, upload, parts), 409, "parts_mismatch")
    assert error["details"]["missingParts"] == [2]
    assert MediaUpload.objects.get(object_key=upload["key"]).status == MediaStatus.PENDING


def test_complete_with_a_too_small_middle_part_is_409(uppy: Client, backend: str) -> None:
    upload = created(uppy)
    parts = upload_parts(uppy, upload, [payload(PART, seed=1), payload(PART - 1, seed=2), payload(5, seed=3)])
    error = assert_error(complete(uppy, upload, parts), 409, "parts_mismatch")
    assert [p["partNumber"] for p in error["details"]["tooSmallParts"]] == [2]


def test_complete_over_the_tenants_limit_is_413(uppy: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.max_audio_bytes = 2 * PART
    tenant.save()
    upload = created(uppy)
    parts = upload_parts(uppy, upload, [payload(PART, seed=1), payload(PART, seed=2), payload(1, seed=3)])
    error = assert_error(complete(uppy, upload, parts), 413, "too_large")
    assert error["details"] == {"maxBytes": 2 * PART, "size": 2 * PART + 1}
    # Refused before storage assembles the object: the parts are still there to abort.
    assert len(list_parts(uppy, upload).json()) == 3
    # The second tenant's limit is its own.
    other = staff_client(other_tenant, username="b")
    theirs = created(other)
    assert complete(other, theirs, upload_parts(other, theirs, [payload(PART, seed=1), b"x" * 9])).status_code == 200


def test_complete_with_etags_other_than_storages_is_409(uppy: Client, backend: str) -> None:
    upload = created(uppy)
    parts = upload_parts(uppy, upload, [payload(PART, seed=1), payload(3, seed=2)])
    wrong = [(1, parts[0][1]), (2, quoted_md5(b"something else"))]
    error = assert_error(complete(uppy, upload, wrong), 409, "parts_mismatch")
    assert error["details"]["differingParts"] == [2]
    fewer = assert_error(complete(uppy, upload, parts[:1]), 409, "parts_mismatch")
    assert fewer["details"]["differingParts"] == [2]
    assert complete(uppy, upload, parts).status_code == 200


def test_abort_frees_storage_and_closes_the_upload(uppy: Client, backend: str) -> None:
    upload = created(uppy)
    put_part(uppy, upload, 1, payload(PART))
    response = abort(uppy, upload)
    assert (response.status_code, response.json()) == (200, {})
    assert MediaUpload.objects.get(object_key=upload["key"]).status == MediaStatus.ABORTED
    assert_error(sign(uppy, upload, 2), 409, "upload_closed")
    assert abort(uppy, upload).status_code == 200  # idempotent
    if backend == "local":
        assert [f for f in stored_files() if f.startswith("multipart/")] == []


@pytest.mark.parametrize("number", ["0", "10001", "abc", "-1"])
def test_part_numbers_outside_1_to_10000_are_400(uppy: Client, number: str) -> None:
    assert_error(sign(uppy, created(uppy), number), 400)


def test_part_10000_can_be_signed(uppy: Client) -> None:
    assert sign(uppy, created(uppy), 10000).status_code == 200


# --- every (uploadId, key) is the caller's own --------------------------------------------------
ROUTES: dict[str, Callable[[Client, dict[str, str]], Any]] = {
    "sign": lambda c, u: sign(c, u, 1),
    "list": list_parts,
    "complete": lambda c, u: complete(c, u, [(1, "abc")]),
    "abort": abort,
}


@pytest.mark.parametrize("route", ROUTES)
def test_another_tenants_upload_id_is_404_on_every_route(
    uppy: Client, other_uppy: Client, route: str, backend: str
) -> None:
    theirs = created(other_uppy, artisanId="art_1")
    before = row_counts()
    assert_error(ROUTES[route](uppy, theirs), 404, "not_found")
    assert row_counts() == before
    assert MediaUpload.objects.get(object_key=theirs["key"]).status == MediaStatus.PENDING


@pytest.mark.parametrize("route", ROUTES)
def test_a_forged_or_mismatched_key_is_404_on_every_route(uppy: Client, route: str) -> None:
    mine, other_mine = created(uppy), created(uppy)
    forged = [
        {"uploadId": mine["uploadId"], "key": other_mine["key"]},  # two real ones, crossed
        {"uploadId": mine["uploadId"], "key": mine["key"].replace("art_1", "art_2")},
        {"uploadId": mine["uploadId"], "key": "tenant_a/../tenant_b/x.ogg"},
        {"uploadId": "0" * 32, "key": mine["key"]},  # guessed
        {"uploadId": mine["uploadId"], "key": "tenant_b/" + mine["key"].split("/", 1)[1]},
    ]
    for pair in forged:
        assert_error(ROUTES[route](uppy, pair), 404, "not_found")
    assert MediaUpload.objects.filter(status=MediaStatus.PENDING).count() == 2


def test_a_v1_key_without_uploadid_is_not_an_uppy_upload(uppy: Client) -> None:
    """A single upload has no multipart upload id: its key with an empty uploadId is not found."""
    form = signed_form(uppy)
    assert_error(list_parts(uppy, {"uploadId": "", "key": form["fields"]["key"]}), 404)


def test_a_missing_key_is_400(uppy: Client) -> None:
    upload = created(uppy)
    assert_error(uppy.get(f"/uppy/s3/multipart/{upload['uploadId']}"), 400)


# --- sessions: staff, upload links, nobody -------------------------------------------------------
def test_an_upload_link_session_uploads_for_its_own_artisan_only(tenant: Tenant, uppy: Client) -> None:
    link = link_client(tenant, "art_link")
    form = params(link)  # no artisanId: the link's
    assert form.status_code == 200, form.content
    assert form.json()["fields"]["key"].startswith("tenant_a/art_link/")
    assert_error(params(link, artisanId="art_1"), 403, "artisan_mismatch")
    assert_error(create(link, artisanId="art_1"), 403, "artisan_mismatch")
    # Another artisan's submission and uploads are answered as missing.
    staffs = created(uppy)
    assert_error(create(link, trackingId=tracking_of(staffs["key"])), 404, "not_found")
    assert_error(list_parts(link, staffs), 404, "not_found")
    own = created(link, artisanId="art_link")
    assert list_parts(link, own).status_code == 200


def test_staff_must_name_the_artisan(uppy: Client) -> None:
    assert_error(params(uppy), 400)
    assert_error(create(uppy), 400)


def test_a_trackingid_of_another_tenant_is_404(uppy: Client, other_uppy: Client) -> None:
    theirs = created(other_uppy)
    assert_error(create(uppy, artisanId="art_1", trackingId=tracking_of(theirs["key"])), 404)


def test_staff_of_several_tenants_name_one_in_metadata_and_keys_name_it_after(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    both = staff_client(tenant, other_tenant, username="both")
    assert_error(create(both, artisanId="art_1"), 403, "tenant_mismatch")
    upload = created(both, tenantId="tenant_b")
    assert upload["key"].startswith("tenant_b/")
    assert complete(both, upload, upload_parts(both, upload, [AUDIO])).status_code == 200


def test_without_a_session_every_route_is_401(tenant: Tenant, uppy: Client) -> None:
    upload = created(uppy)
    nobody = Client(headers={"Origin": ORIGIN})
    assert_error(params(nobody, artisanId="art_1"), 401, "not_authenticated")
    assert_error(create(nobody, artisanId="art_1"), 401, "not_authenticated")
    for route in ROUTES.values():
        assert_error(route(nobody, upload), 401, "not_authenticated")


def test_staff_without_the_operator_role_cannot_upload(tenant: Tenant) -> None:
    viewer = get_user_model().objects.create_user(username="viewer", password="x", is_staff=True)
    Membership.objects.create(user=viewer, tenant=tenant, role=Membership.Role.VIEWER)
    client = Client(headers={"Origin": ORIGIN})
    client.force_login(viewer)
    assert_error(create(client, artisanId="art_1"), 403, "tenant_mismatch")


# --- cross-site refusal without CSRF tokens -------------------------------------------------------
def every_route(client: Client, upload: dict[str, str]) -> list[Any]:
    return [params(client, artisanId="art_1"), create(client, artisanId="art_1")] + [
        route(client, upload) for route in ROUTES.values()
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # neither Origin nor Sec-Fetch-Site: no browser's page
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_requests_not_from_this_sites_pages_are_403_and_change_nothing(
    tenant: Tenant, uppy: Client, headers: dict[str, str]
) -> None:
    upload = created(uppy)
    foreign = Client(headers=headers)
    foreign.cookies = uppy.cookies  # the victim's session cookie, as a cross-site request carries it
    before = row_counts()
    for response in every_route(foreign, upload):
        assert_error(response, 403, "cross_site_refused")
    assert row_counts() == before


def test_a_same_origin_fetch_without_origin_is_accepted_by_sec_fetch_site(tenant: Tenant, uppy: Client) -> None:
    """Browsers send no Origin on a same-origin GET, but do send Sec-Fetch-Site."""
    same = Client(headers={"Sec-Fetch-Site": "same-origin"})
    same.cookies = uppy.cookies
    assert params(same, artisanId="art_1").status_code == 200


def test_bodies_must_be_json(uppy: Client) -> None:
    form_encoded = uppy.post("/uppy/s3/multipart", {"type": "audio/ogg", "metadata[artisanId]": "art_1"})
    assert_error(form_encoded, 415, "unsupported_media_type")
    plain = uppy.post("/uppy/s3/multipart", '{"type": "audio/ogg"}', content_type="text/plain")
    assert_error(plain, 415, "unsupported_media_type")
    assert_error(uppy.post("/uppy/s3/multipart", "{not json", content_type="application/json"), 400)
    assert_error(uppy.post("/uppy/s3/multipart", "[1]", content_type="application/json"), 400)
    upload = created(uppy)
    url = f"/uppy/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}"
    assert_error(uppy.post(url, "parts=1", content_type="application/x-www-form-urlencoded"), 415)
    assert_error(uppy.post(url, json.dumps({"parts": [{"PartNumber": "1", "ETag": "x"}]}), "application/json"), 400)
    with_body = uppy.generic(
        "DELETE", f"/uppy/s3/multipart/{upload['uploadId']}?key={upload['key']}", "x", "text/plain"
    )
    assert_error(with_body, 400)
    assert MediaUpload.objects.get(object_key=upload["key"]).status == MediaStatus.PENDING


def test_other_methods_are_405_with_allow(uppy: Client) -> None:
    response = uppy.post("/uppy/s3/params")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"
    assert uppy.put("/uppy/s3/multipart/abc?key=x")["Allow"] == "GET, DELETE"


def test_an_unsupported_type_is_415(uppy: Client) -> None:
    assert_error(params(uppy, "application/x-php", artisanId="art_1"), 415)
    assert_error(create(uppy, "text/html", artisanId="art_1"), 415)
