"""Whatever happens to the first send, a completed submission's message is sent later, once."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.helpers import complete_body, uploaded_submission
from uploads.models import OutboxMessage, Submission
from uploads.queue import LocalQueue, PublishError, get_publisher
from uploads.services import outbox


def queued_tracking_ids() -> list[str]:
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    return [m["body"]["trackingId"] for m in queue.messages()]


def redrive() -> str:
    out = StringIO()
    call_command("deliver_outbox", stdout=out)
    return out.getvalue()


def complete_while_publish_raises(api: APIClient, error: Exception, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs in a real transaction (transaction=True tests): the first send happens on commit,
    inside the request, as in production."""
    body = complete_body(uploaded_submission(api))

    def broken(self: LocalQueue, message: Any) -> str:
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(LocalQueue, "publish", broken)
        response = api.post("/v1/catalog/upload/complete", body)
    assert response.status_code == 202, response.content
    return body["trackingId"]


@pytest.mark.django_db(transaction=True)
def test_message_held_back_by_a_queue_outage_is_sent_by_the_redrive_once(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracking_id = complete_while_publish_raises(api, PublishError("queue down"), monkeypatch)
    assert OutboxMessage.objects.get().status == "pending"
    assert queued_tracking_ids() == []

    assert redrive().startswith("Sent 1;")
    assert redrive().startswith("Sent 0;")
    assert queued_tracking_ids() == [tracking_id]
    assert Submission.objects.get().stage == "queued"


@pytest.mark.django_db(transaction=True)
def test_unexpected_error_while_sending_still_answers_202_and_the_claim_is_redriven_once_stale(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracking_id = complete_while_publish_raises(api, RuntimeError("a bug in a publisher"), monkeypatch)
    row = OutboxMessage.objects.get()
    assert row.status == "sending"  # as a sender that died mid-send leaves it

    assert redrive().startswith("Sent 0;")  # a fresh claim may still be in flight: left alone
    OutboxMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(minutes=6))
    assert redrive().startswith("Sent 1;")
    assert queued_tracking_ids() == [tracking_id]
    assert OutboxMessage.objects.get().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_slow_sender_whose_claim_went_stale_cannot_undo_the_redrives_delivery(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = complete_body(uploaded_submission(api))
    sends: list[Any] = []

    class SlowThenFailing:
        def publish(self, message: Any) -> str:
            sends.append(message)
            if len(sends) == 1:
                # Meanwhile the claim goes stale and a redrive delivers the row ...
                OutboxMessage.objects.update(claimed_at=timezone.now() - timedelta(minutes=6))
                assert outbox.outbox_redrive() == 1
                raise PublishError("timed out after retries")  # ... then the slow sender gives up
            return "message-id"

    monkeypatch.setattr(outbox, "get_publisher", lambda topic: SlowThenFailing())
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202

    assert OutboxMessage.objects.get().status == "sent"
    assert outbox.outbox_redrive() == 0
    assert len(sends) == 2
    assert Submission.objects.get().stage == "queued"


def test_messages_out_of_attempts_wait_for_staff_and_go_on_retry_failed(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    body = complete_body(uploaded_submission(api))
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)

    def refuse(self: LocalQueue, message: Any) -> str:
        raise PublishError("down")

    with monkeypatch.context() as down:
        down.setattr(LocalQueue, "publish", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("/v1/catalog/upload/complete", body).status_code == 202
        assert redrive().startswith("Sent 0; 0 still pending, 1 failed.")
    assert redrive().startswith("Sent 0; 0 still pending, 1 failed.")  # failed rows wait for a person

    out = StringIO()
    call_command("deliver_outbox", "--retry-failed", stdout=out)
    assert out.getvalue().startswith("Sent 1; 0 still pending, 0 failed.")
    assert queued_tracking_ids() == [body["trackingId"]]
