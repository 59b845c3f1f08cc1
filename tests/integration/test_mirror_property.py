"""Property: whatever happens between a state change and its DynamoDB write (the writes delivered
in any order, repeated, or held back and delivered late), both tables end equal to Django's
final state, and at every moment an item holds the newest version delivered so far: never an
older one.

The changes go through the API and the services as clients, the pipeline, the relay, staff and
the expiry sweep make them, for two submissions of two tenants. Their mirror writes stay in the
outbox (on-commit delivery never runs in these tests) until the test hands them to the mirror's
channel, uploads.services.mirror.mirror_send, in the order it drew."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tests.conftest import Mirror, client_for, put_bytes
from tests.helpers import PART, PHOTO, payload, split
from uploads.dynamodb import batch_get
from uploads.errors import DomainError
from uploads.models import MediaUpload, OutboxMessage, Stage, Submission
from uploads.services import outbox_deliver, submission_close, submission_reprocess, sweep_expired
from uploads.services.mirror import (
    CATALOG,
    CATALOG_ATTRIBUTES,
    UPLOAD_STATE,
    UPLOAD_STATE_ATTRIBUTES,
    catalog_item,
    mirror_send,
    upload_state_item,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

AUDIO = payload(2 * PART + 1000, seed=7)  # a three-part multipart upload
CHUNKS = split(AUDIO, PART)
PART_NUMBERS = list(range(1, len(CHUNKS) + 1))
OTHER_ETAG = '"' + "f" * 32 + '"'  # the client's account of a part changed: a new record, a new version

# Each example is a few dozen API calls and moto writes (about 1 s of CPU): 40 keep the test near
# a minute. The CI profile (tests/conftest.py) replays a fixed sequence of examples.
property_settings = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Step:
    """One state change someone attempts on submission `who` (0: tenant A's, 1: tenant B's).
    Steps the state refuses (a 4xx, a Conflict) stay in the history, as a client's mistakes do."""

    action: str
    who: int = 0
    arg: Any = None


@dataclass
class Actor:
    api: APIClient
    pipeline: APIClient
    tracking_id: str = ""
    media: dict[str, str] = field(default_factory=dict)  # kind -> mediaId
    photo_upload: dict[str, Any] = field(default_factory=dict)
    photo_key: str = ""
    audio_key: str = ""


# --- histories ---------------------------------------------------------------------------------
after_completion = st.one_of(
    st.just(Step("relay")),  # the processing request reaches the queue: uploaded becomes queued
    st.builds(
        Step,
        st.just("report"),
        st.just(0),
        st.tuples(st.sampled_from(["processing", "completed", "failed"]), st.integers(0, 2)),
    ),
    st.just(Step("reprocess")),
)
disruptions = st.one_of(
    st.builds(Step, st.just("abort"), st.just(0), st.sampled_from(["photo", "audio"])),
    st.builds(Step, st.just("close"), st.just(0), st.sampled_from([Stage.ABORTED, Stage.EXPIRED])),
    st.just(Step("sweep")),
)


def insert_anywhere(draw: st.DrawFn, steps: list[Step], step: Step) -> None:
    steps.insert(draw(st.integers(0, len(steps))), step)


@st.composite
def lifecycle(draw: st.DrawFn, who: int) -> list[Step]:
    """One submission's way through its stages, as far as this history takes it: its parts in any
    order (some recorded twice, one perhaps recorded again with another ETag), its files finished
    one by one or not, completion, then the relay, the pipeline's reports and staff's retries;
    perhaps an abort, a close or the sweep anywhere on the way. Half the histories stop midway,
    leaving a file half recorded or a submission short of its stage: the last change then
    announces the final state alone."""
    steps = [Step("part", who, n) for n in draw(st.permutations(PART_NUMBERS))]
    for n in draw(st.lists(st.sampled_from(PART_NUMBERS), max_size=2)):
        insert_anywhere(draw, steps, Step("part", who, n))
    for n in draw(st.lists(st.sampled_from(PART_NUMBERS), max_size=1)):
        insert_anywhere(draw, steps, Step("rerecord", who, n))
    insert_anywhere(draw, steps, Step("photo", who))
    for kind in draw(st.lists(st.sampled_from(["photo", "audio"]), max_size=2, unique=True)):
        insert_anywhere(draw, steps, Step("finish", who, kind))
    steps.append(Step("complete", who))
    steps += [Step(s.action, who, s.arg) for s in draw(st.lists(after_completion, max_size=5))]
    for s in draw(st.lists(disruptions, max_size=1)):
        insert_anywhere(draw, steps, Step(s.action, who, s.arg))
    stop = draw(st.none() | st.integers(0, len(steps) - 1))
    return steps[:stop]


@dataclass(frozen=True)
class History:
    submissions: int  # 1 or 2, of two tenants
    steps: list[Step]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """One or two submissions' lifecycles, interleaved."""
    lives = [draw(lifecycle(who)) for who in range(draw(st.integers(1, 2)))]
    count, merged = len(lives), []
    while any(lives):
        merged.append(lives[draw(st.sampled_from([i for i, life in enumerate(lives) if life]))].pop(0))
    return History(submissions=count, steps=merged)


def delivery_schedule(data: st.DataObject, count: int) -> list[list[int]]:
    """Every row at least once, in batches: any order, some repeated, some held back and sent
    after all the others (a relay that died mid-send, a batch retried after an outage)."""
    rows = range(count)
    order = data.draw(st.permutations(rows), label="order")
    held = data.draw(st.sets(st.sampled_from(rows)), label="held back") if count else set()
    sends = [i for i in order if i not in held]
    for i in data.draw(st.lists(st.sampled_from(rows), max_size=count // 2), label="repeated") if count else []:
        sends.insert(data.draw(st.integers(0, len(sends))), i)
    sends += data.draw(st.permutations(sorted(held)), label="late")
    batches = []
    while sends:
        size = data.draw(st.integers(1, 4))
        batches.append(sends[:size])
        sends = sends[size:]
    return batches


# --- running a history -------------------------------------------------------------------------
def begin(actor: Actor) -> None:
    """Initiates the submission's photo (a single PUT) and its audio (three parts)."""
    response = actor.api.post(
        "/v1/catalog/upload/initiate",
        {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": len(PHOTO)},
        format="json",
    )
    assert response.status_code == 201, response.content
    photo = response.json()
    actor.tracking_id, actor.photo_upload, actor.photo_key = photo["trackingId"], photo, photo["key"]
    response = actor.api.post(
        "/v1/catalog/uploads",
        {
            "artisanId": "art_1",
            "contentType": "audio/ogg",
            "fileSize": len(AUDIO),
            "partSize": PART,
            "trackingId": actor.tracking_id,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    audio = response.json()
    assert audio["strategy"] == "multipart" and audio["numParts"] == len(CHUNKS), audio
    actor.media, actor.audio_key = {"photo": photo["mediaId"], "audio": audio["mediaId"]}, audio["key"]


def answered(response: Any) -> Any:
    """A refusal is fine (the state may not allow the step); a server error never is."""
    assert response.status_code < 500, response.content
    return response


def send_part(actor: Actor, number: int) -> None:
    """A client PUTs one part's bytes and records it."""
    audio = actor.media["audio"]
    signed = answered(actor.api.post(f"/v1/catalog/uploads/{audio}/parts", {"partNumbers": [number]}, format="json"))
    if signed.status_code != 200:
        return
    part = signed.json()["parts"][0]
    put = put_bytes(part["url"], CHUNKS[number - 1], part["headers"])
    if put.status_code == 200:  # else storage no longer takes parts of this upload
        record_part(actor, number, put.headers["ETag"])


def record_part(actor: Actor, number: int, etag: str) -> None:
    record = {"size": len(CHUNKS[number - 1]), "etag": etag}
    answered(actor.api.put(f"/v1/catalog/uploads/{actor.media['audio']}/parts/{number}", record, format="json"))


def complete(actor: Actor) -> None:
    body = {"trackingId": actor.tracking_id, "photoKey": actor.photo_key, "audioKey": actor.audio_key, "language": "hi"}
    answered(actor.api.post("/v1/catalog/upload/complete", body, format="json"))


def relay(actor: Actor) -> None:
    """The relay sends the submission's processing request: uploaded becomes queued."""
    submission = Submission.objects.get(tracking_id=actor.tracking_id)
    pending = submission.outbox.filter(topic=OutboxMessage.Topic.PROCESSING, status=OutboxMessage.Status.PENDING)
    for message_id in pending.values_list("pk", flat=True):
        outbox_deliver(message_id=message_id)


def report(actor: Actor, stage: str, event: int) -> None:
    """The pipeline reports through the events endpoint; a repeated eventId changes nothing."""
    body: dict[str, Any] = {"eventId": f"evt-{event}", "stage": stage}
    if stage == "completed":
        body["catalogId"] = f"cat_{event}"
    if stage == "failed":
        body["errorDetails"] = {"reason": "blurred photo"}
    answered(actor.pipeline.post(f"/v1/catalog/status/{actor.tracking_id}/events", body, format="json"))


def sweep() -> None:
    """The expiry sweep, run as if every open submission had outlived its TTL."""
    later = timezone.now() + timedelta(seconds=django_settings.UPLOADS_SUBMISSION_TTL_SECONDS + 60)
    sweep_expired(dry_run=False, now=later)


def staff(actor: Actor) -> Submission:
    return Submission.objects.get(tracking_id=actor.tracking_id)


ACTIONS: dict[str, Callable[[Actor, Any], object]] = {
    "part": send_part,
    "rerecord": lambda actor, number: record_part(actor, number, OTHER_ETAG),
    "photo": lambda actor, _: put_bytes(actor.photo_upload["uploadUrl"], PHOTO, actor.photo_upload["headers"]),
    "finish": lambda actor, kind: answered(actor.api.post(f"/v1/catalog/uploads/{actor.media[kind]}/complete")),
    "abort": lambda actor, kind: answered(actor.api.delete(f"/v1/catalog/uploads/{actor.media[kind]}")),
    "complete": lambda actor, _: complete(actor),
    "relay": lambda actor, _: relay(actor),
    "report": lambda actor, arg: report(actor, *arg),
    "reprocess": lambda actor, _: submission_reprocess(submission=staff(actor), actor="staff:ops", reason="ticket 12"),
    "close": lambda actor, to: submission_close(submission=staff(actor), to=to, actor="staff:ops", reason="ticket 12"),
    "sweep": lambda actor, _: sweep(),
}


def run(step: Step, actor: Actor) -> None:
    with suppress(DomainError):  # the state refused it, as the API answers 409
        ACTIONS[step.action](actor, step.arg)


@contextmanager
def rolled_back() -> Iterator[None]:
    """Each example starts from the database the fixtures made (outbox rows included)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- reading the tables ------------------------------------------------------------------------
ItemId = tuple[str, ...]  # (table, trackingId[, mediaId])


def owned(item: dict[str, Any] | None, attributes: tuple[str, ...]) -> dict[str, Any] | None:
    return None if item is None else {name: item.get(name) for name in attributes}


def item_id(row: OutboxMessage) -> ItemId:
    return key_id(row.body["table"], row.body["key"])


def key_id(table: str, key: dict[str, Any]) -> ItemId:
    """By name, never by the order of the key's attributes: PostgreSQL's jsonb keeps no order."""
    return (table, key["trackingId"], *([key["mediaId"]] if "mediaId" in key else []))


def newest(rows: list[OutboxMessage]) -> dict[ItemId, dict[str, Any]]:
    """Per item, the state of the highest version among `rows`."""
    items: dict[ItemId, dict[str, Any]] = {}
    for row in rows:
        item = row.body["item"]
        if item_id(row) not in items or item["version"] > items[item_id(row)]["version"]:
            items[item_id(row)] = item
    return items


def read(mirror: Mirror, rows: list[OutboxMessage]) -> dict[ItemId, dict[str, Any] | None]:
    """The items these rows write, as the tables hold them now: owned attributes, None if absent."""
    found: dict[ItemId, dict[str, Any] | None] = {}
    for table, name, attributes in (
        (CATALOG, mirror.tables.catalog, CATALOG_ATTRIBUTES),
        (UPLOAD_STATE, mirror.tables.upload_state, UPLOAD_STATE_ATTRIBUTES),
    ):
        keys = {item_id(row): row.body["key"] for row in rows if row.body["table"] == table}
        for item in batch_get(table=name, keys=list(keys.values())) if keys else []:
            found[key_id(table, item)] = owned(item, attributes)
    return {item_id(row): found.get(item_id(row)) for row in rows}


def django_state(submission: Submission) -> dict[ItemId, dict[str, Any]]:
    """What the tables must end up holding for this submission, by item."""
    state: dict[ItemId, dict[str, Any]] = {(CATALOG, submission.tracking_id): catalog_item(submission)}
    for media in MediaUpload.objects.select_related("submission").filter(submission=submission):
        state[(UPLOAD_STATE, submission.tracking_id, media.media_id)] = upload_state_item(media)
    return state


# --- the property ------------------------------------------------------------------------------
@pytest.fixture
def other_pipeline(other_tenant: Tenant) -> APIClient:
    return client_for(other_tenant, role=ApiKey.Role.PIPELINE)


@property_settings
@given(history=histories(), data=st.data())
def test_mirror_writes_delivered_in_any_order_repeated_or_late_leave_the_tables_equal_to_django(
    api: APIClient,
    other_api: APIClient,
    pipeline: APIClient,
    other_pipeline: APIClient,
    mirror: Mirror,
    history: History,
    data: st.DataObject,
) -> None:
    with rolled_back():
        actors = [Actor(api=api, pipeline=pipeline), Actor(api=other_api, pipeline=other_pipeline)]
        for actor in actors[: history.submissions]:
            begin(actor)
        for step in history.steps:
            run(step, actors[step.who])
        submissions = list(Submission.objects.filter(tracking_id__in=[a.tracking_id for a in actors if a.tracking_id]))
        note(f"stages: {[(s.tracking_id, s.stage, s.version) for s in submissions]}")
        final = {item: state for s in submissions for item, state in django_state(s).items()}
        rows = list(OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR).order_by("pk"))
        assert not [row for row in rows if row.status != "pending"], "nothing is delivered before the test does"

        # The newest write owed for each item is Django's final state: no change went unannounced.
        assert newest(rows) == final

        sent: list[OutboxMessage] = []
        reached: set[ItemId] = set()
        for batch in delivery_schedule(data, len(rows)):
            sending = [rows[i] for i in batch]
            # Until an item's last version arrives, the item is behind: a lost write would be seen.
            arriving = [
                row for row in sending if row.body["item"] == final[item_id(row)] and item_id(row) not in reached
            ]
            assert not [item for item, state in read(mirror, arriving).items() if state == final[item]]
            reached.update(item_id(row) for row in arriving)

            assert mirror_send(sending) == {}
            sent += sending
            # Each item holds the newest version sent so far, never an older one.
            expected = newest(sent)
            assert read(mirror, sending) == {item_id(row): expected[item_id(row)] for row in sending}

        for submission in submissions:
            assert owned(mirror.catalog(submission.tracking_id), CATALOG_ATTRIBUTES) == catalog_item(submission)
            files = MediaUpload.objects.select_related("submission").filter(submission=submission)
            assert {
                media_id: owned(item, UPLOAD_STATE_ATTRIBUTES)
                for media_id, item in mirror.upload_state(submission.tracking_id).items()
            } == {media.media_id: upload_state_item(media) for media in files}
