"""Processing reports the pipeline writes into the catalog record come back into the portal:
through the same service as the events endpoint, once each, never backwards."""

from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from typing import Any

import boto3
import pytest
from django.core.management import CommandError, call_command
from moto import mock_aws
from rest_framework.test import APIClient

from tests.conftest import REGION, Mirror
from tests.helpers import complete_body, uploaded_submission
from uploads import dynamodb
from uploads.models import Event, OutboxMessage, Submission
from uploads.services import mirror_pull, outbox_relay
from uploads.tasks import pull_mirror

pytestmark = pytest.mark.django_db
EARLY, LATER, LATEST = "2026-12-02T10:00:00.000Z", "2026-12-02T10:05:00.000Z", "2026-12-02T10:09:00.000Z"


@pytest.fixture
def queued(api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any) -> Iterator[str]:
    """A submission handed to the pipeline (queued), its catalog record mirrored."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = uploaded_submission(api)
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    assert Submission.objects.get(tracking_id=sent["trackingId"]).stage == "queued"
    yield sent["trackingId"]


def pulled(capture: Any) -> dict[str, int]:
    with capture(execute=True):
        counts = mirror_pull().counts()
    outbox_relay()
    return counts


def test_the_pipeline_moves_a_submission_to_processing_then_completed_through_dynamodb(
    api: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    mirror.pipeline_writes(
        queued, processingStage="processing", processingMessage="Transcribing audio.", processingUpdatedAt=EARLY
    )
    assert pulled(django_capture_on_commit_callbacks)["applied"] == 1
    status = api.get(f"/v1/catalog/status/{queued}").json()
    assert (status["stage"], status["message"]) == ("processing", "Transcribing audio.")

    mirror.pipeline_writes(
        queued,
        processingStage="completed",
        processingMessage="Listed.",
        catalogId="cat_42",
        processingUpdatedAt=LATER,
    )
    assert pulled(django_capture_on_commit_callbacks)["applied"] == 1
    status = api.get(f"/v1/catalog/status/{queued}").json()
    assert (status["stage"], status["message"], status["catalogId"]) == ("completed", "Listed.", "cat_42")

    submission = Submission.objects.get(tracking_id=queued)
    events = list(submission.events.filter(action__startswith="pipeline.").values_list("action", "actor"))
    assert events == [("pipeline.processing", "pipeline (DynamoDB)"), ("pipeline.completed", "pipeline (DynamoDB)")]
    updates = [row.body["stage"] for row in submission.outbox.filter(topic="status").order_by("created_at")]
    assert updates[-2:] == ["processing", "completed"]
    # The mirror write of "completed" keeps what the pipeline wrote beside it.
    record = mirror.catalog(queued)
    assert record is not None
    assert (record["stage"], record["version"], record["catalogId"], record["processingStage"]) == (
        "completed",
        submission.version,
        "cat_42",
        "completed",
    )


def test_a_report_read_twice_is_applied_once(
    mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=EARLY, processingMessage="Busy.")
    assert pulled(django_capture_on_commit_callbacks)["applied"] == 1
    version = Submission.objects.get(tracking_id=queued).version
    assert pulled(django_capture_on_commit_callbacks) == {"checked": 1, "applied": 0, "ignored": 0}
    assert Submission.objects.get(tracking_id=queued).version == version
    assert Event.objects.filter(submission__tracking_id=queued, action="pipeline.processing").count() == 1


def test_a_new_progress_message_is_a_new_report(
    api: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=EARLY, processingMessage="1/2")
    pulled(django_capture_on_commit_callbacks)
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=LATER, processingMessage="2/2")
    assert pulled(django_capture_on_commit_callbacks)["applied"] == 1
    assert api.get(f"/v1/catalog/status/{queued}").json()["message"] == "2/2"


def test_a_stale_report_is_ignored(
    api: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=LATER, processingMessage="New.")
    pulled(django_capture_on_commit_callbacks)
    # A delayed write of an older report lands after the newer one was pulled.
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=EARLY, processingMessage="Old.")
    assert pulled(django_capture_on_commit_callbacks)["ignored"] == 1
    assert api.get(f"/v1/catalog/status/{queued}").json()["message"] == "New."


def test_a_submission_past_the_pipeline_is_not_moved_back(
    api: APIClient, pipeline: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    body = {"eventId": "evt-1", "stage": "completed", "catalogId": "cat_1"}
    assert pipeline.post(f"/v1/catalog/status/{queued}/events", body, format="json").status_code == 200
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=LATEST)
    assert pulled(django_capture_on_commit_callbacks) == {"checked": 0, "applied": 0, "ignored": 0}
    assert api.get(f"/v1/catalog/status/{queued}").json()["stage"] == "completed"


def test_a_failure_report_carries_its_error_details(
    api: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    details = {"code": "AUDIO_UNREADABLE", "seconds": 12, "ratio": Decimal("0.5")}  # DynamoDB numbers
    mirror.pipeline_writes(queued, processingStage="failed", processingUpdatedAt=EARLY, errorDetails=details)
    pulled(django_capture_on_commit_callbacks)
    status = api.get(f"/v1/catalog/status/{queued}").json()
    assert (status["stage"], status["errorDetails"]) == ("failed", {**details, "ratio": 0.5})


@pytest.mark.parametrize(
    "report",
    [
        {"processingStage": "done", "processingUpdatedAt": EARLY},
        {"processingStage": "processing"},  # when: required
        {"processingStage": "processing", "processingUpdatedAt": "yesterday"},
        {"processingStage": "processing", "processingUpdatedAt": "2026-12-02T10:00:00"},  # no time zone
        {"processingStage": "completed", "processingUpdatedAt": EARLY, "catalogId": "c" * 129},
        {"processingStage": "failed", "processingUpdatedAt": EARLY, "errorDetails": "not a map"},
    ],
    ids=["unknown-stage", "no-time", "bad-time", "naive-time", "long-catalog-id", "details-not-a-map"],
)
def test_a_malformed_report_is_ignored(
    report: dict[str, Any], mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    mirror.pipeline_writes(queued, **report)
    assert pulled(django_capture_on_commit_callbacks) == {"checked": 1, "applied": 0, "ignored": 1}
    assert Submission.objects.get(tracking_id=queued).stage == "queued"


def test_only_submissions_in_the_pipeline_are_read_in_batches_of_the_page_size(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        in_pipeline = []
        for _ in range(7):
            sent = uploaded_submission(api)
            assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
            in_pipeline.append(sent["trackingId"])
        uploaded_submission(api)  # still uploading: not the pipeline's
    asked: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        asked.append(len(next(iter(params["RequestItems"].values()))["Keys"]))

    events = dynamodb.client().meta.events
    events.register("provide-client-params.dynamodb.BatchGetItem", count, unique_id="count-batch-get")
    try:
        assert mirror_pull(page_size=3).checked == 7
    finally:
        events.unregister("provide-client-params.dynamodb.BatchGetItem", unique_id="count-batch-get")
    assert asked == [3, 3, 1]


def test_keys_dynamodb_leaves_unprocessed_are_asked_again(
    mirror: Mirror, queued: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dynamodb._call
    calls: list[str] = []

    def throttled_once(operation: str, **request: Any) -> dict[str, Any]:
        calls.append(operation)
        if operation == "batch_get_item" and len(calls) == 1:
            return {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}
        return real(operation, **request)

    monkeypatch.setattr(dynamodb, "_call", throttled_once)
    mirror.pipeline_writes(queued, processingStage="processing", processingUpdatedAt=EARLY)
    assert mirror_pull().applied == 1
    assert calls == ["batch_get_item", "batch_get_item"]


def test_keys_still_unprocessed_after_the_retries_fail_the_pull_rather_than_skip_them(
    mirror: Mirror, queued: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(
        dynamodb, "_call", lambda operation, **request: {"Responses": {}, "UnprocessedKeys": request["RequestItems"]}
    )
    with pytest.raises(dynamodb.DynamoDBUnavailable):
        mirror_pull()
    assert pull_mirror() == {}  # the periodic task logs it and waits for the next beat


def test_with_the_mirror_off_nothing_is_read(api: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sent = uploaded_submission(api)
        api.post("/v1/catalog/upload/complete", complete_body(sent), format="json")
    assert mirror_pull().counts() == {"checked": 0, "applied": 0, "ignored": 0}
    assert not OutboxMessage.objects.filter(topic="mirror").exists()


def test_create_tables_makes_both_tables_with_their_keys_and_index_and_is_safe_to_repeat(
    settings: Any, aws_credentials: None
) -> None:
    settings.DYNAMODB_CATALOG_TABLE = "Catalog"
    with mock_aws():
        out = StringIO()
        call_command("dynamodb_create_tables", stdout=out)
        assert "Catalog: created, active" in out.getvalue()
        assert "Catalog_UploadState: created, active" in out.getvalue()
        client = boto3.client("dynamodb", region_name=REGION)
        catalog = client.describe_table(TableName="Catalog")["Table"]
        state = client.describe_table(TableName="Catalog_UploadState")["Table"]
        assert catalog["KeySchema"] == [{"AttributeName": "trackingId", "KeyType": "HASH"}]
        assert catalog["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        [index] = catalog["GlobalSecondaryIndexes"]
        assert (index["IndexName"], [k["AttributeName"] for k in index["KeySchema"]]) == (
            "byTenant",
            ["tenantId", "updatedAt"],
        )
        assert [k["AttributeName"] for k in state["KeySchema"]] == ["trackingId", "mediaId"]

        again = StringIO()
        call_command("dynamodb_create_tables", stdout=again)
        assert "Catalog: exists already, active" in again.getvalue()


def test_create_tables_refuses_when_the_mirror_is_off(settings: Any) -> None:
    settings.DYNAMODB_CATALOG_TABLE = ""
    with pytest.raises(CommandError, match="DYNAMODB_CATALOG_TABLE"):
        call_command("dynamodb_create_tables")


def test_a_report_the_events_endpoint_already_delivered_changes_nothing(
    pipeline: APIClient, mirror: Mirror, queued: str, django_capture_on_commit_callbacks: Any
) -> None:
    body = {"eventId": "evt-1", "stage": "processing", "message": "Transcribing."}
    assert pipeline.post(f"/v1/catalog/status/{queued}/events", body, format="json").status_code == 200
    version = Submission.objects.get(tracking_id=queued).version
    mirror.pipeline_writes(
        queued, processingStage="processing", processingMessage="Transcribing.", processingUpdatedAt=EARLY
    )
    assert pulled(django_capture_on_commit_callbacks) == {"checked": 1, "applied": 0, "ignored": 0}
    assert Submission.objects.get(tracking_id=queued).version == version
