"""Whatever happens to the first send, a completed submission's message is sent later, once:
the relay claims rows before sending, backs off after a failure, and gives up only into a state
staff can see and retry."""

import threading
from collections.abc import Sequence
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tests.helpers import complete_body, uploaded_submission
from tests.integration.live import publishing_to
from uploads.models import OutboxMessage, Submission
from uploads.queue import LocalQueue, PublishError, QueueMessage, SendFailure, get_publisher
from uploads.services import outbox, outbox_relay, outbox_retry_failed, topics


def queued_tracking_ids() -> list[str]:
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    return [m["body"]["trackingId"] for m in queue.messages()]


def processing_row() -> OutboxMessage:
    return OutboxMessage.objects.get(topic="processing")


def make_due() -> None:
    OutboxMessage.objects.update(next_attempt_at=timezone.now())


def redrive(*args: str) -> str:
    out = StringIO()
    call_command("deliver_outbox", *args, stdout=out)
    return out.getvalue().splitlines()[-1]


def complete_while_publish_raises(api: APIClient, error: Exception, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs in a real transaction (transaction=True tests): the first send happens on commit,
    as the worker would run it right after."""
    body = complete_body(uploaded_submission(api))

    def broken(self: LocalQueue, messages: Any) -> dict[int, SendFailure]:
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(LocalQueue, "publish_batch", broken)
        response = api.post("/v1/catalog/upload/complete", body)
    assert response.status_code == 202, response.content
    return body["trackingId"]


@pytest.mark.django_db(transaction=True)
def test_message_held_back_by_a_queue_outage_is_sent_by_the_relay_once_due(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracking_id = complete_while_publish_raises(api, PublishError("queue down"), monkeypatch)
    row = processing_row()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "queue down")
    assert queued_tracking_ids() == []

    assert outbox_relay() == 0  # backing off: not due yet
    make_due()
    assert outbox_relay() >= 1
    assert outbox_relay() == 0
    assert queued_tracking_ids() == [tracking_id]
    assert processing_row().status == "sent"
    assert Submission.objects.get().stage == "queued"


@pytest.mark.django_db(transaction=True)
def test_unexpected_error_while_sending_still_answers_202_and_the_claim_is_relayed_once_stale(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    tracking_id = complete_while_publish_raises(api, RuntimeError("a bug in a publisher"), monkeypatch)
    row = processing_row()
    assert row.status == "sending"  # as a sender that died mid-send leaves it

    outbox_relay()
    assert processing_row().status == "sending"  # a fresh claim may still be in flight: left alone
    stale = timedelta(seconds=settings.OUTBOX_STALE_CLAIM_SECONDS + 1)
    OutboxMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - stale)
    outbox_relay()
    assert queued_tracking_ids() == [tracking_id]
    assert processing_row().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_slow_sender_whose_claim_went_stale_cannot_undo_the_relays_delivery(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    body = complete_body(uploaded_submission(api))
    sends: list[Any] = []
    stale = timedelta(seconds=settings.OUTBOX_STALE_CLAIM_SECONDS + 1)

    class SlowThenFailing:
        def publish_batch(self, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
            if messages[0].body.get("stage"):  # status updates are not this test's concern
                return {}
            sends.append(messages)
            if len(sends) == 1:
                # Meanwhile the claim goes stale and a relay delivers the row ...
                OutboxMessage.objects.filter(topic="processing").update(claimed_at=timezone.now() - stale)
                assert outbox_relay() >= 1
                raise PublishError("timed out after retries")  # ... then the slow sender gives up
            return {}

    monkeypatch.setattr(topics, "get_publisher", lambda topic: SlowThenFailing())
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202

    assert processing_row().status == "sent"
    make_due()
    outbox_relay()
    assert len(sends) == 2
    assert Submission.objects.get().stage == "queued"


def test_each_failure_backs_off_exponentially_with_jitter(settings: Any) -> None:
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 2
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 60
    for attempts, full in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        delays = {outbox.backoff(attempts).total_seconds() for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays), (attempts, delays)
        assert len(delays) > 1  # jittered: senders that failed together do not return together


def test_messages_out_of_attempts_wait_for_staff_and_go_on_retry_failed(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.OUTBOX_MAX_ATTEMPTS = 2
    body = complete_body(uploaded_submission(api))

    def refuse(self: LocalQueue, messages: Any) -> dict[int, SendFailure]:
        raise PublishError("down")

    with monkeypatch.context() as down:
        down.setattr(LocalQueue, "publish_batch", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("/v1/catalog/upload/complete", body).status_code == 202
        make_due()
        outbox_relay()
    row = processing_row()
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "down")
    make_due()
    outbox_relay()
    assert processing_row().status == "failed"  # failed rows wait for a person
    assert queued_tracking_ids() == []

    assert "0 failed" in redrive("--retry-failed")
    assert queued_tracking_ids() == [body["trackingId"]]
    assert processing_row().deduplication_id == row.deduplication_id  # never reached the queue: same id


def test_a_message_the_queue_refuses_for_its_content_fails_at_once(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    body = complete_body(uploaded_submission(api))

    def reject_processing(self: LocalQueue, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
        return {i: SendFailure("InvalidMessageContents", permanent=True) for i, m in enumerate(messages)}

    monkeypatch.setattr(LocalQueue, "publish_batch", reject_processing)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    row = processing_row()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "InvalidMessageContents")


def test_a_row_edited_beyond_the_queue_limits_fails_without_a_send(api: APIClient) -> None:
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202  # on_commit never runs here
    row = processing_row()
    OutboxMessage.objects.filter(pk=row.pk).update(attributes={f"a{n}": "v" for n in range(11)})
    outbox_relay()
    row.refresh_from_db()
    assert row.status == "failed"
    assert "attributes" in row.last_error
    assert queued_tracking_ids() == []


def test_the_relay_sends_in_batches_of_at_most_ten(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(12):
        assert api.post("/v1/catalog/upload/complete", complete_body(uploaded_submission(api))).status_code == 202
    calls: list[int] = []
    real = LocalQueue.publish_batch

    def counting(self: LocalQueue, messages: Sequence[QueueMessage]) -> dict[int, SendFailure]:
        calls.append(len(messages))
        return real(self, messages)

    monkeypatch.setattr(LocalQueue, "publish_batch", counting)
    outbox_relay()
    assert OutboxMessage.objects.exclude(status="sent").count() == 0
    assert max(calls) == 10
    assert len(queued_tracking_ids()) == 12


def test_a_queue_that_takes_nothing_stops_the_relay_spending_attempts(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(25):
        assert api.post("/v1/catalog/upload/complete", complete_body(uploaded_submission(api))).status_code == 202

    def refuse(self: LocalQueue, messages: Any) -> dict[int, SendFailure]:
        raise PublishError("down")

    monkeypatch.setattr(LocalQueue, "publish_batch", refuse)
    assert outbox_relay() == 0
    tried = OutboxMessage.objects.filter(topic="processing", attempts=1).count()
    assert tried == 10  # one batch failed whole; the other rows keep their attempts for later
    assert OutboxMessage.objects.filter(topic="processing", attempts=0, status="pending").count() == 15


def test_retry_failed_with_ids_leaves_other_failed_rows_alone(api: APIClient) -> None:
    for _ in range(2):
        api.post("/v1/catalog/upload/complete", complete_body(uploaded_submission(api)))
    OutboxMessage.objects.update(status="failed", attempts=15)
    first, second = OutboxMessage.objects.filter(topic="processing")
    assert outbox_retry_failed(message_ids=[first.pk]) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts, second.status) == ("pending", 0, "failed")


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_still_answers_202_and_the_relay_sends_the_message(api: APIClient) -> None:
    body = complete_body(uploaded_submission(api))
    with publishing_to("redis://127.0.0.1:1/0"):  # nothing listens on port 1: the broker is down
        assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    row = processing_row()
    assert (row.status, row.attempts) == ("pending", 0)  # committed, never tried

    assert outbox_relay() >= 1
    assert queued_tracking_ids() == [body["trackingId"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_send_each_message_once(api: APIClient) -> None:
    with publishing_to("memory://"):  # tasks go to a broker nobody reads: the relays do it all
        tracking_ids = [
            api.post("/v1/catalog/upload/complete", body).json()["trackingId"]
            for body in (complete_body(uploaded_submission(api)) for _ in range(40))
        ]
    barrier = threading.Barrier(4)

    def relay() -> None:
        barrier.wait()
        outbox_relay()
        connection.close()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outbox_relay()  # whatever a relay handed back or left due

    assert sorted(queued_tracking_ids()) == sorted(tracking_ids)
    assert not OutboxMessage.objects.exclude(status="sent").exists()
