"""Every JSON value stored from outside is bounded (32 levels, 16 KiB as JSON): the pipeline's
errorDetails, from the events endpoint or the DynamoDB pull-back, is refused beyond that with a
400 naming the field and the bounds; and a value stored before the bound existed reads back as a
notice, so the admin page, the list and the status API still answer."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.conftest import Mirror
from tests.helpers import assert_error, complete_body, staff_client, uploaded_submission
from uploads.errors import InvalidInput
from uploads.json_bounds import MAX_JSON_BYTES, MAX_JSON_DEPTH, NOT_SHOWN, json_check_bounded, json_depth_exceeds
from uploads.models import Event, Stage, Submission
from uploads.services import mirror_pull

BOUNDS = {"field": "errorDetails", "maxDepth": MAX_JSON_DEPTH, "maxBytes": MAX_JSON_BYTES}


def nested(depth: int) -> Any:
    """An object nested `depth` levels deep: {"a": {"a": ... "x"}}."""
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def of_size(size: int) -> dict[str, str]:
    """An object whose compact JSON is exactly `size` bytes."""
    return {"m": "x" * (size - len('{"m":""}'))}


@pytest.fixture
def tracking_id(api: APIClient, django_capture_on_commit_callbacks: Any) -> str:
    """A submission handed to the pipeline."""
    sent = uploaded_submission(api)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    return sent["trackingId"]


def failed(pipeline: APIClient, tracking_id: str, details: Any) -> Any:
    body = {"eventId": "e1", "stage": "failed", "errorDetails": details}
    return pipeline.post(f"/v1/catalog/status/{tracking_id}/events", body, format="json")


def unchanged(tracking_id: str) -> bool:
    submission = Submission.objects.get(tracking_id=tracking_id)
    return submission.stage != Stage.FAILED and not Event.objects.filter(action="pipeline.failed").exists()


# --- the events endpoint ------------------------------------------------------------------------
def test_error_details_one_level_too_deep_is_400_naming_the_field_and_bounds(
    pipeline: APIClient, tracking_id: str
) -> None:
    error = assert_error(failed(pipeline, tracking_id, nested(MAX_JSON_DEPTH + 1)), 400, "invalid_input")
    assert error["details"] == BOUNDS
    assert unchanged(tracking_id)


def test_error_details_at_the_depth_bound_is_stored(pipeline: APIClient, tracking_id: str) -> None:
    assert failed(pipeline, tracking_id, nested(MAX_JSON_DEPTH)).status_code == 200
    assert Submission.objects.get(tracking_id=tracking_id).error_details == nested(MAX_JSON_DEPTH)


def test_error_details_900_deep_is_a_400_not_a_500(pipeline: APIClient, tracking_id: str) -> None:
    """Deep enough to break the encoder when stored, shallow enough for the request parser."""
    assert_error(failed(pipeline, tracking_id, nested(900)), 400)
    assert unchanged(tracking_id)


def test_error_details_over_the_size_bound_is_400(pipeline: APIClient, tracking_id: str) -> None:
    error = assert_error(failed(pipeline, tracking_id, of_size(MAX_JSON_BYTES + 1)), 400, "invalid_input")
    assert error["details"] == BOUNDS
    assert unchanged(tracking_id)


def test_error_details_at_the_size_bound_is_stored(pipeline: APIClient, tracking_id: str) -> None:
    assert failed(pipeline, tracking_id, of_size(MAX_JSON_BYTES)).status_code == 200
    assert Submission.objects.get(tracking_id=tracking_id).error_details == of_size(MAX_JSON_BYTES)


# --- the DynamoDB pull-back ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "details",
    [pytest.param(of_size(MAX_JSON_BYTES + 1), id="too-large"), pytest.param(nested(MAX_JSON_DEPTH + 1), id="deep")],
)
def test_pulled_back_error_details_beyond_the_bounds_are_ignored(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any, details: Any
) -> None:
    sent = uploaded_submission(api)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    tracking_id = sent["trackingId"]
    mirror.pipeline_writes(
        tracking_id, processingStage="failed", processingUpdatedAt="2026-12-02T10:00:00.000Z", errorDetails=details
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert mirror_pull().counts()["ignored"] == 1
    assert unchanged(tracking_id)


# --- a value stored before the bound ------------------------------------------------------------
def test_an_over_deep_value_already_stored_leaves_the_admin_pages_and_status_answering(
    api: APIClient, tenant: Tenant, tracking_id: str
) -> None:
    Submission.objects.filter(tracking_id=tracking_id).update(stage=Stage.FAILED, error_details=nested(900))
    submission = Submission.objects.get(tracking_id=tracking_id)
    assert submission.error_details == NOT_SHOWN
    viewer: Client = staff_client(tenant, Membership.Role.VIEWER)
    page = viewer.get(f"/admin/uploads/submission/{submission.pk}/change/")
    assert page.status_code == 200
    assert "not shown" in page.content.decode()
    assert viewer.get("/admin/uploads/submission/").status_code == 200
    status = api.get(f"/v1/catalog/status/{tracking_id}")
    assert status.status_code == 200 and status.json()["errorDetails"] == NOT_SHOWN


def test_a_value_within_the_bounds_reads_back_as_stored(tracking_id: str) -> None:
    Submission.objects.filter(tracking_id=tracking_id).update(error_details=nested(MAX_JSON_DEPTH))
    assert Submission.objects.get(tracking_id=tracking_id).error_details == nested(MAX_JSON_DEPTH)


# --- the validator itself -----------------------------------------------------------------------
@pytest.mark.once
def test_depth_is_measured_without_recursion_whatever_the_depth() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth_exceeds(deep, MAX_JSON_DEPTH)
    assert not json_depth_exceeds([[1], {"a": [2]}], 3)
    assert json_depth_exceeds([[1], {"a": [2]}], 2)
    assert not json_depth_exceeds("scalar", 0)


@pytest.mark.once
def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidInput):
        json_check_bounded({"n": float("nan")}, field="errorDetails")
    json_check_bounded(None, field="errorDetails")
