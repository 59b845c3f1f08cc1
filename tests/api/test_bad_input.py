"""Bad input on every v1 endpoint: the right 4xx, the `{"error": {"code", "message", "details"}}`
shape, never a 500 and never a partial state change."""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke
from tests.helpers import (
    MULTIPART_SIZE,
    PART,
    UNKNOWN_MEDIA_ID,
    UNKNOWN_TRACKING_ID,
    assert_error,
    assert_field_error,
    complete_body,
    create_upload,
    row_counts,
    sign_parts,
    stored_files,
    uploaded_submission,
)
from uploads.models import MediaStatus, MediaUpload, OutboxMessage, Stage, Submission, UploadPart

INITIATE = "/v1/catalog/upload/initiate"
COMPLETE = "/v1/catalog/upload/complete"
UPLOADS = "/v1/catalog/uploads"


def post_raw(api: APIClient, path: str, body: Any, method: str = "POST") -> Any:
    return api.generic(method, path, body, content_type="application/json")


def valid_initiate(**overrides: Any) -> dict[str, Any]:
    return {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 1000, **overrides}


def valid_create(**overrides: Any) -> dict[str, Any]:
    return {"artisanId": "art_1", "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE, **overrides}


@pytest.fixture
def multipart(api: APIClient) -> dict[str, Any]:
    """An open multipart upload of five parts (the last one short)."""
    return create_upload(api)


# --- malformed bodies ------------------------------------------------------------------------
BODY_ENDPOINTS = [
    ("POST", INITIATE),
    ("POST", COMPLETE),
    ("POST", UPLOADS),
    ("POST", "/v1/catalog/uploads/{media_id}/parts"),
    ("PUT", "/v1/catalog/uploads/{media_id}/parts/1"),
]

MALFORMED_JSON = [
    pytest.param("{", id="unterminated-object"),
    pytest.param('{"artisanId": "art_1",}', id="trailing-comma"),
    pytest.param("{'artisanId': 'art_1'}", id="single-quotes"),
    pytest.param('{"fileSize": NaN}', id="nan"),
    pytest.param('{"fileSize": Infinity}', id="infinity"),
    pytest.param(b"\xff\xfe\x00{", id="not-utf8"),
    pytest.param("[" * 50_000, id="deeply-nested-array"),
    pytest.param('{"a":' * 10_000, id="deeply-nested-object"),
]


@pytest.mark.parametrize("body", MALFORMED_JSON)
def test_malformed_json_is_400_malformed_request_and_changes_nothing(
    api: APIClient, multipart: dict[str, Any], body: str | bytes
) -> None:
    before = row_counts()
    files = stored_files()
    for method, path in BODY_ENDPOINTS:
        response = post_raw(api, path.format(media_id=multipart["mediaId"]), body, method)
        assert_error(response, 400, "malformed_request")
    assert row_counts() == before
    assert stored_files() == files


def test_body_over_the_limit_is_413_and_changes_nothing(api: APIClient, settings: Any) -> None:
    body = json.dumps({"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10, "pad": "x" * 70_000})
    assert len(body) > settings.API_MAX_BODY_BYTES
    before = row_counts()
    assert_error(post_raw(api, INITIATE, body, "POST"), 413, "too_large")
    assert row_counts() == before


@pytest.mark.parametrize("body", ["null", "[]", '"text"', "0", "true", '[{"artisanId": "art_1"}]'])
def test_json_that_is_not_an_object_is_400(api: APIClient, multipart: dict[str, Any], body: str) -> None:
    before = row_counts()
    for method, path in BODY_ENDPOINTS:
        response = post_raw(api, path.format(media_id=multipart["mediaId"]), body, method)
        assert_error(response, 400, "invalid_input")
    assert row_counts() == before


def test_form_encoded_body_is_415(api: APIClient) -> None:
    response = api.generic("POST", INITIATE, "artisanId=art_1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")
    assert row_counts()["Submission"] == 0


# --- wrong types, huge values, missing fields -------------------------------------------------
@pytest.mark.parametrize("path", [INITIATE, UPLOADS])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fileSize", "abc"),
        ("fileSize", "12kb"),
        ("fileSize", True),
        ("fileSize", 1.5),
        ("fileSize", [1000]),
        ("fileSize", {"bytes": 1000}),
        ("fileSize", 10**30),
        ("fileSize", -1),
        ("fileSize", 0),
        ("artisanId", ["art_1"]),
        ("artisanId", {"id": "art_1"}),
        ("artisanId", True),
        ("artisanId", None),
        ("contentType", ["image/jpeg"]),
        ("contentType", False),
        ("trackingId", ["trk_x"]),
        ("trackingId", {"id": "trk_x"}),
        ("tenantId", {"id": "tenant_a"}),
    ],
)
def test_wrong_type_or_out_of_range_field_is_400_naming_it(api: APIClient, path: str, field: str, value: Any) -> None:
    body = valid_initiate(**{field: value}) if path == INITIATE else valid_create(**{field: value})
    response = api.post(path, body, format="json")
    assert_field_error(response, field)
    assert row_counts()["Submission"] == 0
    assert stored_files() == []


@pytest.mark.parametrize("part_size", [10**20, 2**63, -1, 0, "64k", True, 1.5])
def test_bad_part_size_is_400_and_opens_nothing_at_storage(api: APIClient, part_size: Any) -> None:
    response = api.post(UPLOADS, valid_create(partSize=part_size), format="json")
    assert_field_error(response, "partSize")
    assert row_counts()["MediaUpload"] == 0
    assert stored_files() == []


def test_largest_integer_file_size_is_413_not_an_overflow(api: APIClient) -> None:
    response = api.post(UPLOADS, valid_create(fileSize=2**63 - 1), format="json")
    assert_error(response, 413, "too_large")
    assert row_counts()["MediaUpload"] == 0


def test_file_size_over_the_largest_integer_is_400(api: APIClient) -> None:
    assert_field_error(api.post(UPLOADS, valid_create(fileSize=2**63), format="json"), "fileSize")


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        (INITIATE, "artisanId"),
        (INITIATE, "contentType"),
        (UPLOADS, "artisanId"),
        (UPLOADS, "contentType"),
        (UPLOADS, "fileSize"),
    ],
)
def test_missing_required_field_is_400_naming_it(api: APIClient, path: str, missing: str) -> None:
    body = valid_initiate() if path == INITIATE else valid_create()
    del body[missing]
    response = api.post(path, body, format="json")
    assert_error(response, 400, "invalid_input")
    assert missing in response.json()["error"]["details"]["fields"]
    assert row_counts()["Submission"] == 0


@pytest.mark.parametrize("missing", ["trackingId", "photoKey", "audioKey", "language"])
def test_complete_without_a_required_field_is_400_and_queues_nothing(api: APIClient, missing: str) -> None:
    submission = uploaded_submission(api)
    body = complete_body(submission)
    del body[missing]
    before = row_counts()
    response = api.post(COMPLETE, body, format="json")
    assert_error(response, 400, "invalid_input")
    assert missing in response.json()["error"]["details"]["fields"]
    assert row_counts() == before
    assert Submission.objects.get().stage == Stage.INITIATED


def test_empty_body_is_400_listing_every_required_field(api: APIClient) -> None:
    response = api.post(COMPLETE, {}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert {"trackingId", "photoKey", "audioKey", "language"} <= set(error["details"]["fields"])


# --- artisanId, content type, size limits ------------------------------------------------------
@pytest.mark.parametrize(
    "artisan_id",
    ["../x", "..", "a/b", "a" * 65, "कारीगर", "art 1", "art.1", "", "   ", "%2e%2e", "art\x00"],
)
@pytest.mark.parametrize("path", [INITIATE, UPLOADS])
def test_bad_artisan_id_is_400_and_creates_nothing(api: APIClient, path: str, artisan_id: str) -> None:
    body = valid_initiate(artisanId=artisan_id) if path == INITIATE else valid_create(artisanId=artisan_id)
    response = api.post(path, body, format="json")
    assert_field_error(response, "artisanId")
    assert row_counts()["Submission"] == 0
    assert stored_files() == []


def test_longest_artisan_id_is_accepted(api: APIClient) -> None:
    response = api.post(INITIATE, valid_initiate(artisanId="a" * 64), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["key"].split("/")[1] == "a" * 64


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "image/svg+xml", "application/octet-stream", "video/mp4", "image/gif", "application/x-sh", "*/*"],
)
@pytest.mark.parametrize("path", [INITIATE, UPLOADS])
def test_content_type_outside_the_allowlist_is_415(api: APIClient, path: str, content_type: str) -> None:
    body = valid_initiate(contentType=content_type) if path == INITIATE else valid_create(contentType=content_type)
    response = api.post(path, body, format="json")
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"]["field"] == "contentType"
    assert "image/jpeg" in error["details"]["allowed"]
    assert row_counts()["Submission"] == 0
    assert stored_files() == []


@pytest.mark.parametrize("path", [INITIATE, UPLOADS])
def test_file_over_the_tenants_limit_is_413_while_another_tenant_may_send_it(
    api: APIClient, other_api: APIClient, tenant: Tenant, path: str
) -> None:
    tenant.max_photo_bytes = 1000
    tenant.save(update_fields=["max_photo_bytes"])
    body = {"artisanId": "art_1", "contentType": "image/png", "fileSize": 1001}
    error = assert_error(api.post(path, body, format="json"), 413, "too_large")
    assert error["details"]["maxBytes"] == 1000
    assert row_counts()["Submission"] == 0
    assert api.post(path, {**body, "fileSize": 1000}, format="json").status_code == 201
    assert other_api.post(path, body, format="json").status_code == 201


def test_multipart_over_the_tenants_limit_is_413_and_opens_nothing_at_storage(api: APIClient, tenant: Tenant) -> None:
    tenant.max_audio_bytes = MULTIPART_SIZE - 1
    tenant.save(update_fields=["max_audio_bytes"])
    assert_error(api.post(UPLOADS, valid_create(), format="json"), 413, "too_large")
    assert stored_files() == []
    assert row_counts()["MediaUpload"] == 0


# --- unknown ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tracking_id", [UNKNOWN_TRACKING_ID, "nope", "..", "trk_" + "f" * 60])
def test_unknown_tracking_id_is_404_everywhere(api: APIClient, tracking_id: str) -> None:
    submission = uploaded_submission(api)
    before = row_counts()
    assert_error(api.get(f"/v1/catalog/status/{tracking_id}"), 404, "not_found")
    assert_error(api.post(INITIATE, valid_initiate(trackingId=tracking_id), format="json"), 404, "not_found")
    assert_error(api.post(UPLOADS, valid_create(trackingId=tracking_id), format="json"), 404, "not_found")
    assert_error(api.post(COMPLETE, complete_body(submission, trackingId=tracking_id), format="json"), 404)
    assert row_counts() == before


def test_over_long_tracking_id_is_400_in_a_body_and_404_in_a_path(api: APIClient) -> None:
    submission = uploaded_submission(api)
    tracking_id = "trk_" + "f" * 200
    assert_error(api.get(f"/v1/catalog/status/{tracking_id}"), 404, "not_found")
    assert_field_error(api.post(INITIATE, valid_initiate(trackingId=tracking_id), format="json"), "trackingId")
    assert_field_error(api.post(UPLOADS, valid_create(trackingId=tracking_id), format="json"), "trackingId")
    response = api.post(COMPLETE, complete_body(submission, trackingId=tracking_id), format="json")
    assert_field_error(response, "trackingId")


UPLOAD_ENDPOINTS = [
    ("get", "/v1/catalog/uploads/{media_id}", None),
    ("delete", "/v1/catalog/uploads/{media_id}", None),
    ("post", "/v1/catalog/uploads/{media_id}/parts", {"partNumbers": [1]}),
    ("put", "/v1/catalog/uploads/{media_id}/parts/1", {"etag": '"abc"', "size": PART}),
    ("post", "/v1/catalog/uploads/{media_id}/complete", None),
]


@pytest.mark.parametrize(("method", "path", "body"), UPLOAD_ENDPOINTS)
@pytest.mark.parametrize("media_id", [UNKNOWN_MEDIA_ID, "nope", "..", "med_" + "0" * 500])
def test_unknown_media_id_is_404_on_every_upload_endpoint(
    api: APIClient, multipart: dict[str, Any], method: str, path: str, body: Any, media_id: str
) -> None:
    before = row_counts()
    response = getattr(api, method)(path.format(media_id=media_id), body, format="json")
    assert_error(response, 404, "not_found")
    assert row_counts() == before


# --- language and priority ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"language": "xx"}, id="language-unknown"),
        pytest.param({"language": "HI"}, id="language-uppercase"),
        pytest.param({"language": "hindi"}, id="language-name"),
        pytest.param({"language": ""}, id="language-empty"),
        pytest.param({"language": "hi" * 10}, id="language-too-long"),
        pytest.param({"language": ["hi"]}, id="language-list"),
        pytest.param({"priority": "urgent"}, id="priority-unknown"),
        pytest.param({"priority": ""}, id="priority-empty"),
        pytest.param({"priority": 1}, id="priority-number"),
        pytest.param({"priority": None}, id="priority-null"),
    ],
)
def test_complete_with_bad_language_or_priority_is_400_and_queues_nothing(
    api: APIClient, overrides: dict[str, Any]
) -> None:
    submission = uploaded_submission(api)
    before = row_counts()
    response = api.post(COMPLETE, complete_body(submission, **overrides), format="json")
    assert_field_error(response, next(iter(overrides)))
    assert row_counts() == before
    assert OutboxMessage.objects.count() == 0
    row = Submission.objects.get()
    assert (row.stage, row.language, row.priority) == (Stage.INITIATED, "", "")
    assert set(MediaUpload.objects.values_list("status", flat=True)) == {MediaStatus.PENDING}


def test_every_configured_language_is_accepted(api: APIClient, settings: Any) -> None:
    settings.UPLOADS_LANGUAGES = ["kok", "en"]
    submission = uploaded_submission(api)
    assert_field_error(api.post(COMPLETE, complete_body(submission, language="hi"), format="json"), "language")
    response = api.post(COMPLETE, complete_body(submission, language="kok"), format="json")
    assert response.status_code == 202, response.content


# --- completing with the wrong keys ----------------------------------------------------------
def test_complete_with_a_key_of_another_submission_is_400_and_changes_nothing(api: APIClient) -> None:
    mine = uploaded_submission(api)
    other = uploaded_submission(api)
    before = row_counts()
    response = api.post(COMPLETE, complete_body(mine, audioKey=other["audioKey"]), format="json")
    error = assert_error(response, 400, "invalid_input")
    assert error["details"]["field"] == "audioKey"
    assert row_counts() == before
    assert set(Submission.objects.values_list("stage", flat=True)) == {Stage.INITIATED}
    assert set(MediaUpload.objects.values_list("status", flat=True)) == {MediaStatus.PENDING}


@pytest.mark.parametrize(
    ("field", "swap"),
    [("photoKey", "audioKey"), ("audioKey", "photoKey")],
)
def test_complete_with_a_key_naming_the_other_kind_of_file_is_400(api: APIClient, field: str, swap: str) -> None:
    submission = uploaded_submission(api)
    before = row_counts()
    response = api.post(COMPLETE, complete_body(submission, **{field: submission[swap]}), format="json")
    error = assert_error(response, 400, "invalid_input")
    assert error["details"]["field"] == field
    assert row_counts() == before
    assert OutboxMessage.objects.count() == 0


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "tenant_a/art_1/x/y.jpg", "k" * 600, "s3://bucket/key"])
def test_complete_with_a_made_up_key_is_400(api: APIClient, key: str) -> None:
    submission = uploaded_submission(api)
    before = row_counts()
    response = api.post(COMPLETE, complete_body(submission, photoKey=key), format="json")
    assert_field_error(response, "photoKey")
    assert row_counts() == before


# --- part numbers and part reports ---------------------------------------------------------------
@pytest.mark.parametrize(
    "part_numbers",
    [
        pytest.param([], id="empty"),
        pytest.param(list(range(1, 102)), id="101-items"),
        pytest.param([0], id="zero"),
        pytest.param([-1], id="negative"),
        pytest.param([6], id="over-numParts"),
        pytest.param([10_001], id="over-the-part-limit"),
        pytest.param([10**30], id="huge"),
        pytest.param([1, 2, 1], id="duplicates"),
        pytest.param(["one"], id="string"),
        pytest.param([True], id="bool"),
        pytest.param([1.5], id="fraction"),
        pytest.param([[1]], id="nested"),
        pytest.param(None, id="null"),
        pytest.param("1,2", id="comma-string"),
        pytest.param({"1": 1}, id="object"),
    ],
)
def test_bad_part_numbers_are_400(api: APIClient, multipart: dict[str, Any], part_numbers: Any) -> None:
    response = api.post(f"{UPLOADS}/{multipart['mediaId']}/parts", {"partNumbers": part_numbers}, format="json")
    assert_field_error(response, "partNumbers")


def test_over_num_parts_names_the_invalid_numbers(api: APIClient, multipart: dict[str, Any]) -> None:
    response = api.post(f"{UPLOADS}/{multipart['mediaId']}/parts", {"partNumbers": [5, 6, 7]}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert error["details"]["invalidPartNumbers"] == [6, 7]
    assert error["details"]["numParts"] == 5


def test_a_full_batch_of_100_parts_is_accepted(api: APIClient) -> None:
    created = create_upload(api, file_size=100 * PART)
    assert len(sign_parts(api, created["mediaId"], list(range(1, 101)))) == 100


@pytest.mark.parametrize(
    ("part_number", "body", "status"),
    [
        pytest.param(1, {"etag": '"abc"', "size": PART - 1}, 400, id="size-off-by-one"),
        pytest.param(5, {"etag": '"abc"', "size": PART}, 400, id="last-part-full-size"),
        pytest.param(1, {"etag": '"abc"', "size": 10**30}, 400, id="huge-size"),
        pytest.param(1, {"etag": '"abc"', "size": "big"}, 400, id="size-string"),
        pytest.param(1, {"etag": '"abc"'}, 400, id="size-missing"),
        pytest.param(1, {"size": PART}, 400, id="etag-missing"),
        pytest.param(1, {"etag": "x" * 200, "size": PART}, 400, id="etag-too-long"),
        pytest.param(0, {"etag": '"abc"', "size": PART}, 404, id="part-zero"),
        pytest.param(6, {"etag": '"abc"', "size": PART}, 404, id="part-over-numParts"),
        pytest.param(10**30, {"etag": '"abc"', "size": PART}, 404, id="part-huge"),
    ],
)
def test_recording_a_bad_part_is_rejected_and_records_nothing(
    api: APIClient, multipart: dict[str, Any], part_number: int, body: dict[str, Any], status: int
) -> None:
    response = api.put(f"{UPLOADS}/{multipart['mediaId']}/parts/{part_number}", body, format="json")
    assert_error(response, status)
    assert UploadPart.objects.count() == 0
    assert Submission.objects.get().stage == Stage.INITIATED


def test_negative_part_number_in_the_path_is_a_json_404(api: APIClient, multipart: dict[str, Any]) -> None:
    response = api.put(f"{UPLOADS}/{multipart['mediaId']}/parts/-1", {"etag": "x", "size": PART}, format="json")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("urls", ["abc", "-1", "101", "1.5", str(10**30)])
def test_bad_urls_query_parameter_is_400(api: APIClient, multipart: dict[str, Any], urls: str) -> None:
    assert_field_error(api.get(f"{UPLOADS}/{multipart['mediaId']}?urls={urls}"), "urls")


# --- credentials -------------------------------------------------------------------------------
EVERY_ENDPOINT = [
    ("post", INITIATE, valid_initiate()),
    ("post", COMPLETE, {"trackingId": UNKNOWN_TRACKING_ID, "photoKey": "a", "audioKey": "b", "language": "hi"}),
    ("get", "/v1/catalog/status/{tracking_id}", None),
    ("post", UPLOADS, valid_create()),
    ("get", "/v1/catalog/uploads/{media_id}", None),
    ("delete", "/v1/catalog/uploads/{media_id}", None),
    ("post", "/v1/catalog/uploads/{media_id}/parts", {"partNumbers": [1]}),
    ("put", "/v1/catalog/uploads/{media_id}/parts/1", {"etag": '"abc"', "size": PART}),
    ("post", "/v1/catalog/uploads/{media_id}/complete", None),
]


def call(client: APIClient, method: str, path: str, body: Any, upload: dict[str, Any]) -> Any:
    url = path.format(tracking_id=upload["trackingId"], media_id=upload["mediaId"])
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        pytest.param({}, "not_authenticated", id="no-key"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer cup_not-a-real-key"}, "authentication_failed", id="bad-bearer"),
        pytest.param({"HTTP_X_API_KEY": "cup_not-a-real-key"}, "authentication_failed", id="bad-x-api-key"),
        pytest.param({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, "not_authenticated", id="basic-auth"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer "}, "not_authenticated", id="empty-bearer"),
    ],
)
def test_missing_or_invalid_api_key_is_401_on_every_endpoint(
    multipart: dict[str, Any], credentials: dict[str, str], code: str
) -> None:
    before = row_counts()
    client = APIClient()
    client.credentials(**credentials)
    for method, path, body in EVERY_ENDPOINT:
        response = call(client, method, path, body, multipart)
        assert_error(response, 401, code)
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert row_counts() == before
    assert MediaUpload.objects.get().status == MediaStatus.PENDING


def test_revoked_api_key_is_401_on_every_endpoint(tenant: Tenant, multipart: dict[str, Any]) -> None:
    key, raw = api_key_create(tenant=tenant)
    api_key_revoke(api_key=key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = row_counts()
    for method, path, body in EVERY_ENDPOINT:
        assert_error(call(client, method, path, body, multipart), 401, "authentication_failed")
    assert row_counts() == before
    assert MediaUpload.objects.get().status == MediaStatus.PENDING


def test_key_of_a_deactivated_tenant_is_401(api: APIClient, tenant: Tenant) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    assert_error(api.post(INITIATE, valid_initiate(), format="json"), 401, "authentication_failed")
    assert ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).exists()


# --- a batch of garbage at every endpoint ----------------------------------------------------
GARBAGE = [
    "",
    "{}",
    '{"artisanId": {"$ne": null}, "contentType": {"$gt": ""}}',
    '{"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 1e400}',
    '{"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": -0}',
    '{"artisanId": "art_1", "contentType": "image/jpeg\\u0000", "fileSize": 10}',
    '{"artisanId": "\\ud800", "contentType": "\\udfff", "trackingId": "\\ud800"}',
    '{"trackingId": "trk_000000000000000000000000", "photoKey": {}, "audioKey": [], "language": 1}',
    '{"partNumbers": [1, 2, 3], "partNumbers": "dup"}',
    '{"partNumbers": [' + ",".join(["1"] * 10_000) + "]}",
    '{"etag": "\\u0000", "size": 65536}',
    '{"etag": null, "size": null}',
    '{"tenantId": "tenant_b", "artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}',
    json.dumps({"artisanId": "a" * 1_000_000}),
    json.dumps({"trackingId": "x" * 100_000, "photoKey": "p", "audioKey": "a", "language": "hi"}),
    "\ufeff{}",
    "[" * 100_000,
]


@pytest.mark.parametrize(("method", "path", "body"), EVERY_ENDPOINT, ids=lambda v: v if isinstance(v, str) else "")
def test_garbage_never_causes_a_500_and_errors_keep_their_shape(
    api: APIClient, multipart: dict[str, Any], method: str, path: str, body: Any
) -> None:
    url = path.format(tracking_id=multipart["trackingId"], media_id=multipart["mediaId"])
    for garbage in GARBAGE:
        response = api.generic(method.upper(), url, garbage, content_type="application/json")
        assert response.status_code < 500, (garbage[:80], response.content)
        if response.status_code >= 400:
            assert_error(response, response.status_code)
        else:
            # Only the endpoints that take no body may succeed whatever is sent.
            assert body is None, (garbage[:80], response.content)


# --- methods and paths the API does not have ----------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", INITIATE),
        ("put", COMPLETE),
        ("get", UPLOADS),
        ("patch", "/v1/catalog/uploads/{media_id}"),
        ("get", "/v1/catalog/uploads/{media_id}/parts"),
        ("post", "/v1/catalog/uploads/{media_id}/parts/1"),
        ("delete", "/v1/catalog/status/{tracking_id}"),
    ],
)
def test_unsupported_method_is_405_in_the_error_shape(
    api: APIClient, multipart: dict[str, Any], method: str, path: str
) -> None:
    url = path.format(tracking_id=multipart["trackingId"], media_id=multipart["mediaId"])
    before = row_counts()
    assert_error(getattr(api, method)(url, {}, format="json"), 405, "method_not_allowed")
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/catalog/uploads/x/y/z", "/v1/catalog/status/", "/storage/x"])
def test_unknown_api_path_is_a_json_404(api: APIClient, path: str) -> None:
    assert_error(api.get(path), 404, "not_found")
