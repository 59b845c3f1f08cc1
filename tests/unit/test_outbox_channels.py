"""The outbox is generic: a topic is whatever registers a channel, the outbox knows no
destination and no domain rule, and every channel gets the same claims, backoff and bookkeeping."""

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from uploads.delivery import PublishError, SendFailure
from uploads.models import OutboxMessage
from uploads.queue import QueueMessage
from uploads.services import outbox, outbox_relay
from uploads.services.outbox import Channel, outbox_enqueue, outbox_register

pytestmark = pytest.mark.django_db
TOPIC = "test-topic"


class Destination:
    def __init__(self) -> None:
        self.received: list[list[int]] = []
        self.after: list[list[int]] = []
        self.marked_first: list[bool] = []
        self.answer: Any = lambda rows: {}  # called with the rows: returns failures or raises

    def send(self, rows: Sequence[OutboxMessage]) -> dict[int, SendFailure]:
        self.received.append([row.body["n"] for row in rows])
        result: dict[int, SendFailure] = self.answer(rows)
        return result

    def after_send(self, rows: Sequence[OutboxMessage]) -> None:
        self.after.append([row.body["n"] for row in rows])
        sent = OutboxMessage.objects.filter(pk__in=[row.pk for row in rows], status="sent").count()
        self.marked_first.append(sent == len(rows) and transaction.get_connection().in_atomic_block)


@pytest.fixture
def destination() -> Iterator[Destination]:
    target = Destination()
    outbox_register(TOPIC, Channel(send=target.send, after_send=target.after_send))
    yield target
    outbox._channels.pop(TOPIC)


def enqueue(count: int) -> list[OutboxMessage]:
    return [
        outbox_enqueue(topic=TOPIC, dedup_key=f"t:{n}", message=QueueMessage(body={"n": n}), submission=None)
        for n in range(count)
    ]


def statuses() -> list[tuple[str, int]]:
    return list(OutboxMessage.objects.filter(topic=TOPIC).order_by("pk").values_list("status", "attempts"))


def test_the_outbox_imports_no_domain_module() -> None:
    source = Path(outbox.__file__).read_text()
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    ours = {name for name in imported if name and name.split(".")[0] in ("uploads", "tenants")}
    assert ours == {"uploads.delivery", "uploads.models", "uploads.queue"}


def test_a_registered_topic_is_relayed_and_its_after_send_follows_the_marking(
    destination: Destination,
) -> None:
    enqueue(3)
    assert outbox_relay() == 3
    assert destination.received == [[0, 1, 2]]
    assert destination.after == [[0, 1, 2]]
    assert destination.marked_first == [True]
    assert statuses() == [("sent", 1)] * 3


def test_a_failure_reported_for_one_row_backs_off_that_row_only(destination: Destination) -> None:
    destination.answer = lambda rows: {1: SendFailure(reason="throttled")}
    enqueue(3)
    assert outbox_relay() == 2
    assert statuses() == [("sent", 1), ("pending", 1), ("sent", 1)]
    assert destination.after == [[0, 2]]
    assert OutboxMessage.objects.get(dedup_key="t:1").last_error == "throttled"


def test_a_permanent_failure_is_failed_for_staff_at_once(destination: Destination) -> None:
    destination.answer = lambda rows: {0: SendFailure(reason="too big", permanent=True)}
    enqueue(1)
    outbox_relay()
    assert statuses() == [("failed", 1)]


def test_a_destination_that_is_down_spends_one_attempt_and_the_relay_stops_trying_it(
    destination: Destination,
) -> None:
    def down(rows: Sequence[OutboxMessage]) -> dict[int, SendFailure]:
        raise PublishError("connection refused")

    destination.answer = down
    enqueue(3)
    assert outbox_relay() == 0
    assert len(destination.received) == 1
    assert statuses() == [("pending", 1)] * 3


def test_rows_not_tried_before_the_destination_went_down_spend_no_attempt(destination: Destination) -> None:
    destination.answer = lambda rows: {
        0: SendFailure(reason="refused"),
        1: SendFailure(reason="refused", attempted=False),
        2: SendFailure(reason="refused", attempted=False),
    }
    enqueue(3)
    outbox_relay()
    assert statuses() == [("pending", 1), ("pending", 0), ("pending", 0)]


def test_a_row_of_a_topic_nobody_registered_waits_instead_of_being_lost() -> None:
    row = outbox_enqueue(topic="unknown", dedup_key="u:1", message=QueueMessage(body={}), submission=None)
    assert outbox_relay() == 0
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
