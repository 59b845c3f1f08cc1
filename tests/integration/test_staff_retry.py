"""Staff send a failed submission back to the pipeline, and retry messages that ran out of
attempts. A retry must not be eaten by the FIFO queue's 5-minute deduplication window (its id
differs from the first request's) and must not multiply (its own id is stable)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership, Tenant
from tests.conftest import client_for
from tests.helpers import complete_body, staff_action, staff_client, uploaded_submission
from uploads.errors import Conflict
from uploads.models import OutboxMessage, Stage, Submission
from uploads.queue import LocalQueue, get_publisher
from uploads.services import submission_reprocess
from uploads.services.submissions import processing_deduplication_id

pytestmark = pytest.mark.django_db(transaction=True)


def completed(api: APIClient) -> Submission:
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    return Submission.objects.get(tracking_id=body["trackingId"])


def fail(submission: Submission, tenant: Tenant, event_id: str = "evt-1") -> None:
    pipeline = client_for(tenant, role=ApiKey.Role.PIPELINE)
    body = {"eventId": event_id, "stage": "failed", "errorDetails": {"reason": "blurry photo"}}
    assert pipeline.post(f"/v1/catalog/status/{submission.tracking_id}/events", body, format="json").status_code == 200


def sent_dedup_ids() -> list[str]:
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    return [m["deduplicationId"] for m in queue.messages()]


def test_reprocessing_a_failed_submission_sends_a_new_stable_deduplication_id(api: APIClient, tenant: Tenant) -> None:
    submission = completed(api)
    fail(submission, tenant)
    retried = submission_reprocess(submission=submission, actor="staff:alice")
    assert (retried.stage, retried.error_details) == (Stage.UPLOADED, None)
    assert Submission.objects.get(pk=submission.pk).stage == Stage.QUEUED  # once the relay sent it
    fail(retried, tenant, event_id="evt-2")
    submission_reprocess(submission=retried, actor="staff:alice")

    first = processing_deduplication_id(submission)
    assert sent_dedup_ids() == [
        first,
        processing_deduplication_id(submission, attempt=1),
        processing_deduplication_id(submission, attempt=2),
    ]
    assert len(set(sent_dedup_ids())) == 3
    # Stable: the same retry computes the same id, so its own resends are dropped by FIFO.
    assert processing_deduplication_id(submission, attempt=1) == sent_dedup_ids()[1]
    keys = list(OutboxMessage.objects.filter(topic="processing").values_list("dedup_key", flat=True).order_by("pk"))
    assert keys == [f"processing:{submission.tracking_id}:{n}" for n in range(3)]


def test_only_a_failed_submission_can_be_sent_back(api: APIClient) -> None:
    submission = completed(api)
    with pytest.raises(Conflict):
        submission_reprocess(submission=submission, actor="staff:alice")
    assert OutboxMessage.objects.filter(topic="processing").count() == 1


def test_operator_sends_failed_submission_back_from_the_admin(api: APIClient, tenant: Tenant) -> None:
    submission = completed(api)
    fail(submission, tenant)
    confirmation, done = staff_action(staff_client(tenant, Membership.Role.OPERATOR), "reprocess", [submission])
    assert "A new processing request is queued" in confirmation.content.decode()
    assert done.status_code == 200
    assert f"Submission {submission.tracking_id}: Sent back for processing" in done.content.decode()
    assert Submission.objects.get(pk=submission.pk).stage == Stage.QUEUED
    assert len(sent_dedup_ids()) == 2
    event = submission.events.get(action="submission.reprocess")
    assert (event.actor, event.reason) == (f"staff:operator_{tenant.id}", "ticket 4711")


def test_viewer_has_no_retry_actions(api: APIClient, tenant: Tenant) -> None:
    submission = completed(api)
    fail(submission, tenant)
    viewer = staff_client(tenant, Membership.Role.VIEWER)
    page = viewer.get("/admin/uploads/submission/").content.decode()
    assert "reprocess" not in page
    staff_action(viewer, "reprocess", [submission])
    assert Submission.objects.get(pk=submission.pk).stage == Stage.FAILED


def test_operator_of_one_tenant_cannot_retry_another_tenants_submission(
    api: APIClient, other_api: APIClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = completed(other_api)
    fail(theirs, other_tenant)
    staff_action(staff_client(tenant, Membership.Role.OPERATOR), "reprocess", [theirs])
    assert Submission.objects.get(pk=theirs.pk).stage == Stage.FAILED


def test_operator_retries_failed_delivery_from_the_admin(
    api: APIClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    submission = completed(api)
    row = OutboxMessage.objects.get(topic="processing")
    OutboxMessage.objects.filter(pk=row.pk).update(
        status="failed", attempts=settings.OUTBOX_MAX_ATTEMPTS, last_error="x"
    )
    page = staff_client(tenant, Membership.Role.OPERATOR)
    listing = page.get("/admin/uploads/outboxmessage/?status__exact=failed").content.decode()
    assert "retry_delivery" in listing
    response = page.post(
        "/admin/uploads/outboxmessage/", {"action": "retry_delivery", "_selected_action": [row.pk]}, follow=True
    )
    assert "1 message(s) will be sent again shortly." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.submission_id == submission.pk


def test_sending_back_a_submission_that_has_not_failed_says_why_and_changes_nothing(
    api: APIClient, tenant: Tenant
) -> None:
    submission = completed(api)
    confirmation, done = staff_action(staff_client(tenant, Membership.Role.OPERATOR), "reprocess", [submission])
    assert "Left alone: It is queued; only a failed one can be retried." in confirmation.content.decode()
    assert "yes, go ahead" not in confirmation.content.decode()  # nothing to confirm
    assert "not done. It is queued; only a failed one can be retried." in done.content.decode()
    assert Submission.objects.get(pk=submission.pk).stage == Stage.QUEUED
    assert OutboxMessage.objects.filter(topic="processing").count() == 1
