"""Acting on selected rows in the admin is for operators: a viewer is not offered the actions,
and a viewer's post of one changes nothing (Django shows the list again); staff who operate one
tenant and view another act on the first's rows only, in the submission list and in the outbox
list alike."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.helpers import create_upload, staff_action, staff_client
from uploads.models import OutboxMessage, Stage, Submission

pytestmark = pytest.mark.django_db

OPERATOR, VIEWER = Membership.Role.OPERATOR, Membership.Role.VIEWER
OUTBOX = "/admin/uploads/outboxmessage/"


def started(api: APIClient) -> Submission:
    created = create_upload(api, content_type="image/jpeg", file_size=1000)
    return Submission.objects.get(tracking_id=created["trackingId"])


def failed_message(submission: Submission) -> OutboxMessage:
    return OutboxMessage.objects.create(
        dedup_key=f"status:{submission.tracking_id}:1",
        topic=OutboxMessage.Topic.STATUS,
        submission=submission,
        body={"trackingId": submission.tracking_id},
        status=OutboxMessage.Status.FAILED,
        attempts=15,
    )


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def test_viewer_posting_a_list_action_on_selected_rows_changes_nothing(api: APIClient, tenant: Tenant) -> None:
    submission = started(api)
    viewer = staff_client(tenant, VIEWER)
    assert 'value="abort"' not in viewer.get("/admin/uploads/submission/").content.decode()  # not offered
    confirmation, done = staff_action(viewer, "abort", [submission])
    for response in (confirmation, done):  # Django shows a viewer the list again: no action is theirs
        assert response.status_code == 200
        assert "Abort: confirm" not in response.content.decode()
        assert response.context["cl"].model is Submission
    assert Submission.objects.get(pk=submission.pk).stage == submission.stage


def test_viewer_retrying_selected_outbox_messages_changes_nothing(api: APIClient, tenant: Tenant) -> None:
    message = failed_message(started(api))
    viewer = staff_client(tenant, VIEWER)
    response = viewer.post(OUTBOX, {"action": "retry_delivery", "_selected_action": [message.pk]}, follow=True)
    assert response.status_code == 200 and response.context["cl"].model is OutboxMessage  # the list again
    assert not any("sent again" in m for m in messages_of(response))
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxMessage.Status.FAILED


def test_outbox_retry_by_operator_of_one_tenant_and_viewer_of_another_retries_only_the_first(
    api: APIClient, other_api: APIClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = failed_message(started(api)), failed_message(started(other_api))
    client = staff_client(tenant, OPERATOR, also=[(other_tenant, VIEWER)])
    response = client.post(OUTBOX, {"action": "retry_delivery", "_selected_action": [mine.pk, theirs.pk]}, follow=True)
    assert "1 message(s) will be sent again shortly." in messages_of(response)
    assert OutboxMessage.objects.get(pk=mine.pk).status == OutboxMessage.Status.PENDING
    assert OutboxMessage.objects.get(pk=theirs.pk).status == OutboxMessage.Status.FAILED


def test_list_action_by_operator_of_one_tenant_and_viewer_of_another_leaves_the_seconds_rows(
    api: APIClient, other_api: APIClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = started(api), started(other_api)
    client = staff_client(tenant, OPERATOR, also=[(other_tenant, VIEWER)])
    confirmation, done = staff_action(client, "expire", [mine, theirs])
    assert f"You may only view tenant {other_tenant.id}" in confirmation.content.decode()
    assert any(f"Submission {theirs.tracking_id}: not done. You may only view" in m for m in messages_of(done))
    assert Submission.objects.get(pk=theirs.pk).stage == theirs.stage
    assert Submission.objects.get(pk=mine.pk).stage == Stage.EXPIRED
