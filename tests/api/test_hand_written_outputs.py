"""The status GET, part signing and the resume GET answer with bodies written by hand
(uploads/api/outputs.py) and part signing checks the part numbers by hand (uploads/api/inputs.py),
for speed. The serializers remain
the contract: for the same objects, each hand-written function gives exactly what its serializer
gives (keys, values, types and order), and the input check accepts exactly what the serializer
accepts, with the same data, or leaves the refusal to the serializer itself."""

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.api.openapi import assert_matches_schema
from tests.conftest import put_bytes
from tests.helpers import (
    MULTIPART_SIZE,
    PHOTO,
    create_upload,
    media_row,
    payload,
    split,
    store_parts_directly,
    upload_multipart,
)
from uploads import selectors
from uploads.api import serializers as io
from uploads.api.inputs import sign_parts_input
from uploads.api.outputs import progress_output, signed_parts_output, status_output
from uploads.errors import DomainError, NotFound
from uploads.models import MediaUpload, Stage, Submission
from uploads.services.media import SignedPart, media_sign_parts
from uploads.services.progress import media_progress
from uploads.storage.base import SignedRequest

pytestmark = pytest.mark.django_db


def exactly(data: Any) -> str:
    """Keys in order, values with their types: what the JSON renderer would write."""
    return json.dumps(data)


def serialized_status(tenant: Tenant, tracking_id: str) -> dict[str, Any]:
    """The status as the serializer gives it, over the submission fetched as it used to be."""
    submission = Submission.objects.filter(tenant=tenant, tracking_id=tracking_id).prefetch_related("media").get()
    return dict(io.StatusOutput(submission).data)


def hand_written_status(tenant: Tenant, tracking_id: str, artisan_id: str | None = None) -> dict[str, Any]:
    found = selectors.submission_status(tenant=tenant, tracking_id=tracking_id, artisan_id=artisan_id)
    return status_output(found.submission, found.files)


def a_submission(tenant: Tenant, **fields: Any) -> Submission:
    return Submission.objects.create(tenant=tenant, artisan_id="art_1", **fields)


SHAPES: dict[str, dict[str, Any]] = {
    "just started": {},
    "completed with a catalog id": {"stage": Stage.COMPLETED, "stage_message": "Done.", "catalog_id": "cat-17"},
    "failed with error details": {"stage": Stage.FAILED, "error_details": {"reason": "blurry", "score": 0.2}},
    "failed with a list of errors": {"stage": Stage.FAILED, "error_details": [{"code": "x"}, 3, None]},
    "failed with empty error details": {"stage": Stage.FAILED, "error_details": {}},
    "failed with a blank error": {"stage": Stage.FAILED, "error_details": ""},
    "failed with a zero": {"stage": Stage.FAILED, "error_details": 0},
    "processing, message in Hindi": {"stage": Stage.PROCESSING, "stage_message": "प्रक्रिया में"},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_status_is_the_serializers_for_every_kind_of_submission(tenant: Tenant, shape: str) -> None:
    submission = a_submission(tenant, **SHAPES[shape])
    assert exactly(hand_written_status(tenant, submission.tracking_id)) == exactly(
        serialized_status(tenant, submission.tracking_id)
    )
    media_row(submission, "photo")  # pending, single, declared size, no parts
    media_row(submission, "audio", part_count=6, parts=4)  # multipart, part of it recorded
    media_row(submission, "photo", status="uploaded")  # its size known
    open_upload = media_row(submission, "audio", part_count=3)
    MediaUpload.objects.filter(pk=open_upload.pk).update(declared_size=None, part_size=None, part_count=None)
    aborted = media_row(submission, "audio", status="aborted", part_count=2, parts=2)
    MediaUpload.objects.filter(pk=aborted.pk).update(bytes_recorded=0, parts_recorded=0)
    written = hand_written_status(tenant, submission.tracking_id)
    assert len(written["files"]) == 5
    assert exactly(written) == exactly(serialized_status(tenant, submission.tracking_id))


def test_status_lists_the_files_in_the_order_prefetching_gave(tenant: Tenant) -> None:
    submission = a_submission(tenant)
    files = [media_row(submission, kind) for kind in ("photo", "audio", "photo", "audio")]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for file, minutes in zip(files, (3, 1, 2, 1), strict=True):  # out of id order, with a tie
        MediaUpload.objects.filter(pk=file.pk).update(created_at=base + timedelta(minutes=minutes))
    found = selectors.submission_status(tenant=tenant, tracking_id=submission.tracking_id)
    prefetched = Submission.objects.prefetch_related("media").get(pk=submission.pk).media.all()
    assert [m.media_id for m in found.files] == [m.media_id for m in prefetched]
    assert [m.media_id for m in found.files] == [
        files[1].media_id,
        files[3].media_id,
        files[2].media_id,
        files[0].media_id,
    ]
    assert all(m.submission is found.submission for m in found.files)


def test_status_reads_one_query_whatever_the_files(tenant: Tenant, django_assert_num_queries: Any) -> None:
    submission = a_submission(tenant)
    for kind in ("photo", "audio", "photo"):
        media_row(submission, kind, part_count=4, parts=2)
    with django_assert_num_queries(1):
        body = hand_written_status(tenant, submission.tracking_id)
    assert len(body["files"]) == 3


def test_another_tenants_or_another_artisans_submission_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = a_submission(tenant)
    media_row(mine, "photo")
    with pytest.raises(NotFound):
        hand_written_status(other_tenant, mine.tracking_id)
    with pytest.raises(NotFound):
        hand_written_status(tenant, mine.tracking_id, artisan_id="art_2")
    assert hand_written_status(tenant, mine.tracking_id, artisan_id="art_1")["trackingId"] == mine.tracking_id


def test_a_file_is_found_with_its_submission_and_tenant_only_through_its_tenant(
    tenant: Tenant, other_tenant: Tenant, django_assert_num_queries: Any
) -> None:
    media = media_row(a_submission(tenant), "audio", part_count=3, parts=1)
    with django_assert_num_queries(1):
        found = selectors.media_get(tenant=tenant, media_id=media.media_id)
        assert found.submission.tenant.name == tenant.name  # all read by the one query
    expected = MediaUpload.objects.select_related("submission__tenant").get(pk=media.pk)
    for got, want in ((found, expected), (found.submission, expected.submission)):
        assert {f.attname: getattr(got, f.attname) for f in type(got)._meta.concrete_fields} == {
            f.attname: getattr(want, f.attname) for f in type(want)._meta.concrete_fields
        }
    for outsider in ({"tenant": other_tenant}, {"tenant": tenant, "artisan_id": "art_2"}):
        with pytest.raises(NotFound):
            selectors.media_get(media_id=media.media_id, **outsider)


# --- signed part URLs ---------------------------------------------------------------------------
def drf_request(path: str = "/v1/catalog/uploads/x/parts", **extra: Any) -> Request:
    return Request(RequestFactory().post(path, **extra))


def serialized_parts(parts: list[SignedPart], request: Request) -> dict[str, Any]:
    return dict(io.SignedPartsOutput({"parts": parts}, context={"request": request}).data)


def test_signed_parts_are_the_serializers_for_the_local_backend(api: APIClient, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver", "uploads.example.com"]
    created = create_upload(api)
    media = MediaUpload.objects.get(media_id=created["mediaId"])
    parts = media_sign_parts(media=media, part_numbers=[3, 1, 5, 2])
    for request in (drf_request(), drf_request(secure=True, HTTP_HOST="uploads.example.com:8443")):
        assert exactly(signed_parts_output(parts, request)) == exactly(serialized_parts(parts, request))


AWKWARD_URLS = [
    "https://bucket.s3.ap-south-1.amazonaws.com/t/a/k.wav?partNumber=1&uploadId=x%2By&X-Amz-Signature=ab",
    "/storage/put/.eJwrSS0u0U0sKMrPS1Ut0FFIzs8rzsxJVUjOz0vOT0nNSwcAY9gIJw:1t2:abc-_",
    "/storage/put/a/./b",
    "/storage/put/a/../b",
    "//evil.example.com/storage/put/x",
    "/storage/put/ünïcode",
    "/storage/put/with space",
    "/storage/put/with%20escape",
    "relative/path",
    "/portal/storage/put/under-a-script-prefix",
]


@pytest.mark.parametrize("url", AWKWARD_URLS)
def test_signed_parts_are_the_serializers_for_any_url(url: str) -> None:
    expires = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    parts = [
        SignedPart(part_number=1, size=5 * 1024 * 1024, request=SignedRequest(url=url, expires_at=expires)),
        SignedPart(
            part_number=2,
            size=None,
            request=SignedRequest(url=url, expires_at=expires + timedelta(seconds=1), headers={"Content-MD5": "x=="}),
        ),
    ]
    request = drf_request()
    assert exactly(signed_parts_output(parts, request)) == exactly(serialized_parts(parts, request))


# --- the part numbers ---------------------------------------------------------------------------
def outcome(check: Any, data: Any) -> tuple[str, Any]:
    try:
        return "valid", check(data)
    except ValidationError as exc:
        return "invalid", exc.detail


def by_serializer(data: Any) -> dict[str, Any]:
    serializer = io.SignPartsInput(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


numbers = st.one_of(
    st.integers(min_value=-5, max_value=10_005),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(["1", " 7 ", "10000", "1.0", "1e3"]),
)
bodies = st.one_of(
    st.fixed_dictionaries({"partNumbers": st.lists(st.integers(min_value=1, max_value=10_000), max_size=101)}),
    st.fixed_dictionaries({"partNumbers": st.lists(numbers, max_size=102)}),
    st.fixed_dictionaries(
        {"partNumbers": st.one_of(st.none(), st.text(), st.integers(), st.dictionaries(st.text(), st.integers()))}
    ),
    st.dictionaries(st.text(max_size=12), st.integers()),
    st.lists(st.integers(), max_size=3),
    st.none(),
    st.text(max_size=10),
)


@given(body=bodies)
def test_the_part_numbers_check_agrees_with_the_serializer(body: Any) -> None:
    assert outcome(sign_parts_input, body) == outcome(by_serializer, body)


@pytest.mark.parametrize(
    "body",
    [
        {"partNumbers": [1, 2, 3]},
        {"partNumbers": list(range(1, 101))},
        {"partNumbers": [10_000], "other": "ignored"},
        {"partNumbers": []},
        {"partNumbers": list(range(1, 102))},
        {"partNumbers": [0]},
        {"partNumbers": [True]},
        {"partNumbers": ["2"]},
        {"partNumbers": [2.0]},
        {"partNumbers": [10_001]},
        {"partNumbers": "1,2"},
        {},
    ],
)
def test_the_part_numbers_check_agrees_with_the_serializer_at_the_edges(body: Any) -> None:
    assert outcome(sign_parts_input, body) == outcome(by_serializer, body)


# --- the file to sign for -------------------------------------------------------------------------
def signed_or_refused(media: MediaUpload, numbers: list[int]) -> Any:
    try:
        return media_sign_parts(media=media, part_numbers=numbers)
    except DomainError as exc:
        return (type(exc), exc.message, exc.details)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"status": "uploaded"},
        {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)},
        {"strategy": "single"},
        {"declared_size": None, "part_size": None, "part_count": None},
    ],
    ids=["pending", "finished", "expired", "single PUT", "open multipart"],
)
@pytest.mark.parametrize("stage", [Stage.UPLOADING, Stage.ABORTED, Stage.EXPIRED])
def test_signing_reads_what_it_needs_and_signs_as_with_the_whole_rows(
    tenant: Tenant, change: dict[str, Any], stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = media_row(a_submission(tenant, stage=stage), "audio", part_count=6, parts=2)
    MediaUpload.objects.filter(pk=media.pk).update(**change)
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.25)  # both sign in the same second
    light = selectors.media_to_sign(tenant=tenant, media_id=media.media_id)
    whole = selectors.media_get(tenant=tenant, media_id=media.media_id)
    for numbers in ([1, 2, 6], [7], [3, 3]):
        assert signed_or_refused(light, numbers) == signed_or_refused(whole, numbers)
    assert light.submission.tenant is tenant


def test_the_file_to_sign_is_found_only_through_its_tenant_and_artisan(tenant: Tenant, other_tenant: Tenant) -> None:
    media = media_row(a_submission(tenant), "audio", part_count=3)
    for outsider in ({"tenant": other_tenant}, {"tenant": tenant, "artisan_id": "art_2"}):
        with pytest.raises(NotFound):
            selectors.media_to_sign(media_id=media.media_id, **outsider)
    assert selectors.media_to_sign(tenant=tenant, media_id=media.media_id, artisan_id="art_1").pk == media.pk


def test_signing_ten_parts_is_one_query(api: APIClient, django_assert_num_queries: Any) -> None:
    created = create_upload(api)
    path = f"/v1/catalog/uploads/{created['mediaId']}/parts"
    assert api.post(path, {"partNumbers": [1]}, format="json").status_code == 200  # the key is remembered
    with django_assert_num_queries(1):
        response = api.post(path, {"partNumbers": [1, 2, 3, 4, 5]}, format="json")
    assert response.status_code == 200 and len(response.json()["parts"]) == 5


# --- resume -------------------------------------------------------------------------------------
TINY_PART = 16  # with the minimum part size lowered to it, 10,000 parts are quick to store


def new_upload(api: APIClient, *, parts: int = 5, stored: Iterable[int] = (), wrong_size: Iterable[int] = ()) -> str:
    """A multipart upload of `parts` tiny parts, the `stored` ones at storage, the `wrong_size`
    ones too but a byte short (storage holds them; they do not count)."""
    data = payload(parts * TINY_PART, seed=parts)
    media_id = create_upload(api, file_size=len(data), part_size=TINY_PART)["mediaId"]
    media = MediaUpload.objects.get(media_id=media_id)
    chunks = split(data, TINY_PART)
    for number in stored:
        store_parts_directly(media, [chunks[number - 1]], first=number)
    for number in wrong_size:
        store_parts_directly(media, [chunks[number - 1][:-1]], first=number)
    return media_id


def single_put(api: APIClient, *, sent: bool) -> str:
    created = create_upload(api, content_type="image/jpeg", file_size=len(PHOTO))
    if sent:
        assert put_bytes(created["uploadUrl"], PHOTO, created["headers"]).status_code == 200
    return str(created["mediaId"])


def without_plan(api: APIClient) -> str:
    media_id = new_upload(api, stored=[2, 3])
    MediaUpload.objects.filter(media_id=media_id).update(declared_size=None, part_size=None, part_count=None)
    return media_id


def finished(api: APIClient) -> str:
    media_id = str(upload_multipart(api, payload(MULTIPART_SIZE, seed=3))["mediaId"])
    assert api.post(f"/v1/catalog/uploads/{media_id}/complete").status_code == 200
    return media_id


def aborted(api: APIClient) -> str:
    media_id = new_upload(api, stored=[1])
    assert api.delete(f"/v1/catalog/uploads/{media_id}").status_code == 200
    return media_id


UPLOADS: dict[str, Callable[[APIClient], str]] = {
    "no part stored": lambda api: new_upload(api),
    "gaps and a part of the wrong size": lambda api: new_upload(api, stored=[1, 3, 5], wrong_size=[4]),
    "every part of 10,000": lambda api: new_upload(api, parts=10_000, stored=range(1, 10_001)),
    "every other part of 10,000": lambda api: new_upload(api, parts=10_000, stored=range(2, 10_001, 2)),
    "single PUT, not sent": lambda api: single_put(api, sent=False),
    "single PUT, sent": lambda api: single_put(api, sent=True),
    "multipart without a plan": without_plan,
    "finished": finished,
    "aborted": aborted,
}


@pytest.mark.parametrize("urls", [0, 3])
@pytest.mark.parametrize("upload", UPLOADS)
def test_resume_is_the_serializers_for_every_kind_of_upload(
    api: APIClient, settings: Any, upload: str, urls: int
) -> None:
    settings.UPLOADS_MIN_PART_SIZE = TINY_PART
    settings.ALLOWED_HOSTS = ["testserver", "uploads.example.com"]
    media = MediaUpload.objects.select_related("submission").get(media_id=UPLOADS[upload](api))
    progress = media_progress(media=media, sign_pending=urls)
    path = f"/v1/catalog/uploads/{media.media_id}"
    for request in (
        Request(RequestFactory().get(path)),
        Request(RequestFactory().get(path, secure=True, HTTP_HOST="uploads.example.com:8443")),
    ):
        serialized = dict(io.ProgressOutput(progress, context={"request": request}).data)
        assert exactly(progress_output(progress, request)) == exactly(serialized)


def test_resume_answers_what_the_hand_written_body_says(api: APIClient, settings: Any) -> None:
    settings.UPLOADS_MIN_PART_SIZE = TINY_PART
    media_id = new_upload(api, parts=7, stored=[1, 2, 6])
    response = api.get(f"/v1/catalog/uploads/{media_id}?urls=2")
    assert_matches_schema(response, "/v1/catalog/uploads/{media_id}", "get")
    body = response.json()
    assert [p["partNumber"] for p in body["completedParts"]] == [1, 2, 6]
    assert (body["pendingParts"], [p["partNumber"] for p in body["pendingPartUrls"]]) == ([3, 4, 5, 7], [3, 4])
