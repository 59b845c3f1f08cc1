"""The pipeline reports processing status with a pipeline key: POST /v1/catalog/status/{trackingId}/events.
Reports may come twice or out of order; the stage only moves forward and a repeat changes nothing."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tests.api.openapi import assert_matches_schema, openapi_document
from tests.conftest import client_for
from tests.helpers import (
    UNKNOWN_TRACKING_ID,
    assert_error,
    assert_field_error,
    complete_body,
    row_counts,
    uploaded_submission,
)
from uploads.errors import Conflict
from uploads.models import Event, OutboxMessage, Stage, Submission

EVENTS_PATH = "/v1/catalog/status/{tracking_id}/events"
OUTPUT_KEYS = {"eventId", "accepted", "trackingId", "stage", "version"}


@pytest.fixture
def other_pipeline(other_tenant: Tenant) -> APIClient:
    return client_for(other_tenant, role=ApiKey.Role.PIPELINE)


@pytest.fixture
def tracking_id(api: APIClient, other_tenant: Tenant) -> str:
    """Tenant A's submission, completed by its client and so handed to the pipeline (stage
    uploaded), with tenant B beside it."""
    submission = uploaded_submission(api)
    response = api.post("/v1/catalog/upload/complete", complete_body(submission), format="json")
    assert response.status_code == 202, response.content
    return submission["trackingId"]


def report(client: APIClient, tracking_id: str, **body: Any) -> Any:
    return client.post(f"/v1/catalog/status/{tracking_id}/events", body, format="json")


def submission_of(tracking_id: str) -> Submission:
    return Submission.objects.get(tracking_id=tracking_id)


def status_updates(tracking_id: str) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(submission__tracking_id=tracking_id, topic=OutboxMessage.Topic.STATUS).order_by(
            "pk"
        )
    )


def state_of(tracking_id: str) -> dict[str, Any]:
    submission = submission_of(tracking_id)
    return {
        "rows": row_counts(),
        "stage": submission.stage,
        "message": submission.stage_message,
        "version": submission.version,
        "catalogId": submission.catalog_id,
        "errorDetails": submission.error_details,
    }


# --- reporting moves the stage forward ------------------------------------------------------------
def test_processing_then_completed_shows_stage_and_catalog_id_in_status(
    api: APIClient, pipeline: APIClient, tracking_id: str
) -> None:
    processing = report(pipeline, tracking_id, eventId="evt-1", stage="processing", message="Transcribing audio.")
    assert processing.status_code == 200, processing.content
    assert processing.json()["stage"] == "processing"
    assert api.get(f"/v1/catalog/status/{tracking_id}").json()["message"] == "Transcribing audio."

    completed = report(pipeline, tracking_id, eventId="evt-2", stage="completed", catalogId="cat_42")
    assert completed.status_code == 200, completed.content
    status = api.get(f"/v1/catalog/status/{tracking_id}").json()
    assert status["stage"] == "completed"
    assert status["catalogId"] == "cat_42"
    assert status["message"] == "Processing complete."
    assert "errorDetails" not in status


def test_failed_with_error_details_shows_them_in_status(api: APIClient, pipeline: APIClient, tracking_id: str) -> None:
    details = {"reason": "audio_unreadable", "retryable": False, "hints": ["re-record"]}
    response = report(
        pipeline, tracking_id, eventId="evt-f", stage="failed", message="Bad audio.", errorDetails=details
    )
    assert response.status_code == 200, response.content
    status = api.get(f"/v1/catalog/status/{tracking_id}").json()
    assert status["stage"] == "failed"
    assert status["message"] == "Bad audio."
    assert status["errorDetails"] == details
    assert "catalogId" not in status


def test_accepted_event_answers_with_exact_keys_and_new_version(pipeline: APIClient, tracking_id: str) -> None:
    before = submission_of(tracking_id).version
    response = report(pipeline, tracking_id, eventId="evt-1", stage="processing")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "eventId": "evt-1",
        "accepted": True,
        "trackingId": tracking_id,
        "stage": "processing",
        "version": before + 1,
    }
    assert set(response.json()) == OUTPUT_KEYS


def test_null_optional_fields_count_as_absent(pipeline: APIClient, tracking_id: str) -> None:
    response = report(
        pipeline, tracking_id, eventId="evt-1", stage="completed", message=None, catalogId=None, errorDetails=None
    )
    assert response.status_code == 200, response.content
    submission = submission_of(tracking_id)
    assert (submission.stage, submission.stage_message, submission.catalog_id) == (
        "completed",
        "Processing complete.",
        "",
    )


# --- each accepted event: one version, one Event, one status update ------------------------------
def test_each_accepted_event_bumps_version_and_writes_one_event_and_one_status_update(
    pipeline: APIClient, tracking_id: str
) -> None:
    start = submission_of(tracking_id).version
    events_before = Event.objects.filter(submission__tracking_id=tracking_id).count()
    updates_before = len(status_updates(tracking_id))
    for n, (event_id, stage) in enumerate([("e1", "processing"), ("e2", "processing"), ("e3", "completed")], start=1):
        assert report(pipeline, tracking_id, eventId=event_id, stage=stage).status_code == 200
        assert submission_of(tracking_id).version == start + n
        assert Event.objects.filter(submission__tracking_id=tracking_id).count() == events_before + n
        assert Event.objects.filter(submission__tracking_id=tracking_id, external_id=event_id).count() == 1
        assert len(status_updates(tracking_id)) == updates_before + n


def test_event_records_who_reported_and_the_event_id(pipeline: APIClient, tracking_id: str) -> None:
    report(pipeline, tracking_id, eventId="run-7:step.2", stage="processing")
    event = Event.objects.get(submission__tracking_id=tracking_id, external_id="run-7:step.2")
    assert event.action == "pipeline.processing"
    assert event.actor.startswith("api:cup_")
    assert event.details == {"eventId": "run-7:step.2"}


def test_status_update_of_completed_event_carries_catalog_id(
    tenant: Tenant, pipeline: APIClient, tracking_id: str
) -> None:
    report(pipeline, tracking_id, eventId="e1", stage="completed", message="Listed.", catalogId="cat_9")
    submission = submission_of(tracking_id)
    update = status_updates(tracking_id)[-1]
    assert update.status == OutboxMessage.Status.PENDING
    body = update.body
    assert set(body) == {"trackingId", "tenantId", "stage", "message", "version", "timestamp", "catalogId"}
    assert body["trackingId"] == tracking_id
    assert body["tenantId"] == tenant.id
    assert body["stage"] == "completed"
    assert body["message"] == "Listed."
    assert body["version"] == submission.version
    assert body["timestamp"].endswith("Z")
    assert body["catalogId"] == "cat_9"


def test_status_update_of_failed_event_carries_error_details(pipeline: APIClient, tracking_id: str) -> None:
    report(pipeline, tracking_id, eventId="e1", stage="failed", errorDetails={"reason": "blurry_photo"})
    body = status_updates(tracking_id)[-1].body
    assert set(body) == {"trackingId", "tenantId", "stage", "message", "version", "timestamp", "errorDetails"}
    assert body["stage"] == "failed"
    assert body["message"] == "Processing failed."
    assert body["errorDetails"] == {"reason": "blurry_photo"}
    assert body["version"] == submission_of(tracking_id).version


# --- repeats and stages that would go backwards ---------------------------------------------------
def test_repeated_event_id_is_200_not_accepted_and_changes_nothing(pipeline: APIClient, tracking_id: str) -> None:
    first = report(pipeline, tracking_id, eventId="evt-1", stage="processing", message="Started.")
    before = state_of(tracking_id)
    again = report(pipeline, tracking_id, eventId="evt-1", stage="processing", message="Started.")
    assert again.status_code == 200, again.content
    assert again.json() == {**first.json(), "accepted": False}
    assert state_of(tracking_id) == before


def test_repeated_event_id_with_another_stage_changes_nothing(pipeline: APIClient, tracking_id: str) -> None:
    report(pipeline, tracking_id, eventId="evt-1", stage="processing")
    before = state_of(tracking_id)
    again = report(pipeline, tracking_id, eventId="evt-1", stage="completed", catalogId="cat_1")
    assert again.status_code == 200, again.content
    assert again.json()["accepted"] is False
    assert again.json()["stage"] == "processing"
    assert state_of(tracking_id) == before


def test_processing_after_completed_is_409_and_changes_nothing(pipeline: APIClient, tracking_id: str) -> None:
    report(pipeline, tracking_id, eventId="e1", stage="completed", catalogId="cat_1")
    before = state_of(tracking_id)
    response = report(pipeline, tracking_id, eventId="e2", stage="processing")
    error = assert_error(response, 409, Conflict.code)
    assert error["details"]["from"] == "completed"
    assert error["details"]["to"] == "processing"
    assert state_of(tracking_id) == before


def test_failed_after_completed_is_409(pipeline: APIClient, tracking_id: str) -> None:
    report(pipeline, tracking_id, eventId="e1", stage="completed", catalogId="cat_1")
    error = assert_error(report(pipeline, tracking_id, eventId="e2", stage="failed"), 409, Conflict.code)
    assert (error["details"]["from"], error["details"]["to"]) == ("completed", "failed")


def test_report_for_submission_still_uploading_is_409_and_changes_nothing(api: APIClient, pipeline: APIClient) -> None:
    tracking_id = uploaded_submission(api)["trackingId"]  # bytes at storage, upload not completed
    before = state_of(tracking_id)
    error = assert_error(report(pipeline, tracking_id, eventId="e1", stage="processing"), 409, Conflict.code)
    assert error["details"]["to"] == "processing"
    assert error["details"]["from"] == before["stage"]
    assert state_of(tracking_id) == before


def test_refused_event_id_can_be_sent_again_once_the_submission_is_ready(api: APIClient, pipeline: APIClient) -> None:
    submission = uploaded_submission(api)
    tracking_id = submission["trackingId"]
    assert report(pipeline, tracking_id, eventId="e1", stage="processing").status_code == 409
    assert api.post("/v1/catalog/upload/complete", complete_body(submission), format="json").status_code == 202
    response = report(pipeline, tracking_id, eventId="e1", stage="processing")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] is True


# --- keys and tenants ------------------------------------------------------------------------------
def test_client_key_cannot_report_events(api: APIClient, tracking_id: str) -> None:
    before = state_of(tracking_id)
    assert_error(report(api, tracking_id, eventId="e1", stage="completed", catalogId="x"), 403, "permission_denied")
    assert state_of(tracking_id) == before


def test_missing_key_on_events_is_401(tracking_id: str) -> None:
    assert_error(report(APIClient(), tracking_id, eventId="e1", stage="processing"), 401, "not_authenticated")


def test_pipeline_key_cannot_initiate_or_complete_uploads(api: APIClient, pipeline: APIClient) -> None:
    submission = uploaded_submission(api)
    before = row_counts()
    initiated = pipeline.post(
        "/v1/catalog/upload/initiate", {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}
    )
    assert_error(initiated, 403, "permission_denied")
    completed = pipeline.post("/v1/catalog/upload/complete", complete_body(submission), format="json")
    assert_error(completed, 403, "permission_denied")
    assert_error(pipeline.post("/v1/catalog/uploads", {"artisanId": "a", "fileSize": 10}), 403, "permission_denied")
    assert row_counts() == before
    assert submission_of(submission["trackingId"]).stage == Stage.INITIATED


def test_pipeline_key_may_read_status(pipeline: APIClient, tracking_id: str) -> None:
    response = pipeline.get(f"/v1/catalog/status/{tracking_id}")
    assert response.status_code == 200, response.content
    assert response.json()["trackingId"] == tracking_id
    assert response.json()["stage"] == "uploaded"


def test_other_tenants_pipeline_key_gets_404_and_changes_nothing(other_pipeline: APIClient, tracking_id: str) -> None:
    before = state_of(tracking_id)
    response = report(other_pipeline, tracking_id, eventId="e1", stage="completed", catalogId="cat_1")
    assert_error(response, 404, "not_found")
    assert state_of(tracking_id) == before


def test_other_tenants_tracking_id_answers_like_a_missing_one(other_pipeline: APIClient, tracking_id: str) -> None:
    theirs = report(other_pipeline, tracking_id, eventId="e1", stage="processing")
    missing = report(other_pipeline, UNKNOWN_TRACKING_ID, eventId="e1", stage="processing")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert set(theirs.json()["error"]["details"]) == set(missing.json()["error"]["details"])


def test_other_tenants_pipeline_key_gets_404_for_status(other_pipeline: APIClient, tracking_id: str) -> None:
    assert_error(other_pipeline.get(f"/v1/catalog/status/{tracking_id}"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/catalog/status/trk_%00/events",
        "/v1/catalog/status/trk_123/events",
        "/v1/catalog/status/..%2F..%2Fetc/events",
        "/v1/catalog/status/" + "x" * 5000 + "/events",
    ],
)
def test_malformed_tracking_id_in_the_path_is_a_json_404_without_a_query(
    pipeline: APIClient, path: str, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert_error(pipeline.post(path, {"eventId": "e1", "stage": "processing"}, format="json"), 404, "not_found")


# --- bad bodies ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": "processing"}, "eventId"),
        ({"eventId": "", "stage": "processing"}, "eventId"),
        ({"eventId": "evt 1", "stage": "processing"}, "eventId"),
        ({"eventId": " evt1", "stage": "processing"}, "eventId"),
        ({"eventId": "evt1\n", "stage": "processing"}, "eventId"),
        ({"eventId": "evt/1", "stage": "processing"}, "eventId"),
        ({"eventId": "e" * 129, "stage": "processing"}, "eventId"),
        ({"eventId": "e1"}, "stage"),
        ({"eventId": "e1", "stage": "queued"}, "stage"),
        ({"eventId": "e1", "stage": "COMPLETED"}, "stage"),
        ({"eventId": "e1", "stage": "failed", "errorDetails": ["a", "b"]}, "errorDetails"),
        ({"eventId": "e1", "stage": "failed", "errorDetails": "oops"}, "errorDetails"),
        ({"eventId": "e1", "stage": "processing", "message": "m" * 501}, "message"),
        ({"eventId": "e1", "stage": "completed", "catalogId": "c" * 129}, "catalogId"),
    ],
)
def test_bad_body_is_400_naming_the_field_and_changes_nothing(
    pipeline: APIClient, tracking_id: str, body: dict[str, Any], field: str
) -> None:
    before = state_of(tracking_id)
    assert_field_error(report(pipeline, tracking_id, **body), field)
    assert state_of(tracking_id) == before


def test_longest_allowed_values_are_accepted(pipeline: APIClient, tracking_id: str) -> None:
    response = report(
        pipeline, tracking_id, eventId="e" * 128, stage="completed", message="m" * 500, catalogId="c" * 128
    )
    assert response.status_code == 200, response.content
    assert submission_of(tracking_id).catalog_id == "c" * 128


def test_non_json_body_is_415(pipeline: APIClient, tracking_id: str) -> None:
    response = pipeline.post(
        f"/v1/catalog/status/{tracking_id}/events", {"eventId": "e1", "stage": "processing"}, format="multipart"
    )
    assert_error(response, 415, "unsupported_media_type")


# --- the OpenAPI document --------------------------------------------------------------------------
def test_schema_documents_the_events_operation() -> None:
    operation = openapi_document()["paths"][EVENTS_PATH]["post"]
    assert operation["operationId"] == "submission_event"
    assert {"200", "400", "403", "404", "409"} <= set(operation["responses"])
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = openapi_document()["components"]["schemas"][request]["properties"]
    assert set(fields) == {"eventId", "stage", "message", "catalogId", "errorDetails"}
    assert fields["eventId"]["pattern"] == "^[A-Za-z0-9._:-]+$"
    assert fields["errorDetails"]["type"] == "object"


def test_events_responses_match_schema(
    api: APIClient, pipeline: APIClient, other_pipeline: APIClient, tracking_id: str
) -> None:
    accepted = report(pipeline, tracking_id, eventId="e1", stage="completed", catalogId="cat_1")
    assert accepted.status_code == 200
    assert_matches_schema(accepted, EVENTS_PATH, "post")
    repeated = report(pipeline, tracking_id, eventId="e1", stage="completed", catalogId="cat_1")
    assert_matches_schema(repeated, EVENTS_PATH, "post")
    backwards = report(pipeline, tracking_id, eventId="e2", stage="processing")
    assert backwards.status_code == 409
    assert_matches_schema(backwards, EVENTS_PATH, "post")
    invalid = report(pipeline, tracking_id, stage="nope")
    assert invalid.status_code == 400
    assert_matches_schema(invalid, EVENTS_PATH, "post")
    forbidden = report(api, tracking_id, eventId="e3", stage="processing")
    assert forbidden.status_code == 403
    assert_matches_schema(forbidden, EVENTS_PATH, "post")
    missing = report(other_pipeline, tracking_id, eventId="e3", stage="processing")
    assert missing.status_code == 404
    assert_matches_schema(missing, EVENTS_PATH, "post")
    status = pipeline.get(f"/v1/catalog/status/{tracking_id}")
    assert_matches_schema(status, "/v1/catalog/status/{tracking_id}", "get")
