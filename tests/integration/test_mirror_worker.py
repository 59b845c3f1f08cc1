"""The DynamoDB mirror through an outage, with a real Celery worker (and its beat) in its own
process, a real Redis broker, the test database (SQLite or PostgreSQL) and DynamoDB on a moto
server over HTTP behind a proxy that refuses connections, then swallows requests so they hang.

While DynamoDB is unreachable, 50 submissions of two tenants are uploaded, completed, queued by
the relay and reported on by the pipeline: every API call answers as it does without a mirror,
and promptly, because no request waits for DynamoDB. The mirror writes wait in the outbox; once
DynamoDB is back the tables converge on Django's state and reconcile finds no drift."""

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.management import call_command
from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tests.conftest import REGION, client_for, put_bytes
from tests.helpers import AUDIO, PHOTO
from tests.integration.live import FaultyProxy, Worker, wait_for, worker_env
from uploads.dynamodb import Tables, create_tables, get_item, mirror_tables
from uploads.models import MediaUpload, OutboxMessage, Submission
from uploads.services import mirror_reconcile
from uploads.services.mirror import (
    CATALOG_ATTRIBUTES,
    UPLOAD_STATE_ATTRIBUTES,
    catalog_item,
    catalog_key,
    upload_state_item,
    upload_state_key,
)

SUBMISSIONS = 50
PROMPT = 2.0  # seconds: far below one DynamoDB timeout (botocore's connect 5 s, read 10 s)
ENDPOINT = "AWS_ENDPOINT_URL_DYNAMODB"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@dataclass(frozen=True)
class Dynamo:
    """DynamoDB on a moto server: `client` reaches it directly (the test's eyes), `proxy` is the
    network the portal's processes reach it through."""

    tables: Tables
    endpoint: str
    proxy: FaultyProxy
    client: Any

    def item_count(self) -> int:
        return sum(self.client.scan(TableName=name, Select="COUNT")["Count"] for name in vars(self.tables).values())


@dataclass
class Timings:
    """How long each API call took; the outage must not show in any of them."""

    calls: list[tuple[float, str]] = field(default_factory=list)

    def call(self, what: str, status: int, send: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        response = send(*args, **kwargs)
        took = time.monotonic() - start
        self.calls.append((took, what))
        assert response.status_code == status, (what, response.status_code, getattr(response, "content", b""))
        assert took < PROMPT, f"{what} took {took:.2f}s during the outage"
        return response


def atomic_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB evaluates a write's condition and applies it atomically; moto's server does
    not: two UpdateItems of one item served by two of its threads can both pass
    `version < :v` against the old item, and the older version may land last. The worker
    sends one item's versions concurrently after an outage, so without this the test saw
    (about one run in three) an item left a version behind: moto's race, not the mirror's."""
    lock = threading.Lock()
    for name in ("update_item", "put_item"):
        original = getattr(DynamoDBBackend, name)

        def serialized(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialized)


@pytest.fixture
def dynamodb(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dynamo]:
    """The mirror switched on, its tables created on a fresh moto server (in this process,
    its conditional writes made atomic as DynamoDB's are)."""
    atomic_writes(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    proxy = FaultyProxy((host, port))
    settings.DYNAMODB_CATALOG_TABLE = "CatalogProcessingRecords"
    monkeypatch.setenv(ENDPOINT, endpoint)
    tables = mirror_tables()
    assert tables is not None
    create_tables(tables)
    yield Dynamo(
        tables=tables,
        endpoint=endpoint,
        proxy=proxy,
        client=boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint),
    )
    proxy.close()
    server.stop()


@pytest.fixture
def worker(broker: tuple[str, str], dynamodb: Dynamo, settings: Any, tmp_path: Path) -> Iterator[Worker]:
    data_dir = (tmp_path / "worker-data").resolve()
    # Items name their files by URI; the local backend's URIs are paths under its root, so this
    # process and the worker share one root, as a web process and its worker share settings.
    settings.UPLOADS_LOCAL_ROOT = data_dir / "storage"
    env = worker_env(
        data_dir=data_dir,
        broker=broker,
        aws_endpoint=dynamodb.proxy.url,
        DYNAMODB_CATALOG_TABLE=settings.DYNAMODB_CATALOG_TABLE,
        DYNAMODB_PULL_INTERVAL_SECONDS="2",
    )
    live = Worker(workdir=tmp_path, env=env)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def other_pipeline(other_tenant: Tenant) -> APIClient:
    return client_for(other_tenant, role=ApiKey.Role.PIPELINE)


@contextmanager
def reaching(endpoint: str) -> Iterator[None]:
    """This process's DynamoDB calls go to `endpoint` (uploads.dynamodb keys its client by it)."""
    saved = os.environ[ENDPOINT]
    os.environ[ENDPOINT] = endpoint
    try:
        yield
    finally:
        os.environ[ENDPOINT] = saved


def submit(api: APIClient, timings: Timings) -> str:
    """A client's whole upload: both files initiated and PUT, then completed. Returns the trackingId."""
    initiate = "/v1/catalog/upload/initiate"
    file: dict[str, Any] = {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": len(PHOTO)}
    photo = timings.call("initiate", 201, api.post, initiate, file, format="json").json()
    tracking_id = photo["trackingId"]
    file.update(contentType="audio/ogg", fileSize=len(AUDIO), trackingId=tracking_id)
    audio = timings.call("initiate", 201, api.post, initiate, file, format="json").json()
    for upload, data in ((photo, PHOTO), (audio, AUDIO)):
        timings.call("PUT", 200, put_bytes, upload["uploadUrl"], data, upload["headers"])
    body = {"trackingId": tracking_id, "photoKey": photo["key"], "audioKey": audio["key"], "language": "hi"}
    timings.call("complete", 202, api.post, "/v1/catalog/upload/complete", body, format="json")
    return tracking_id


def report(pipeline: APIClient, tracking_id: str, timings: Timings, **event: str) -> None:
    path = f"/v1/catalog/status/{tracking_id}/events"
    timings.call(f"report {event['stage']}", 200, pipeline.post, path, event, format="json")


def mirror_rows() -> Any:
    return OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR)


def assert_mirror_waits(dynamodb: Dynamo) -> None:
    """Owed, not lost and not given up: every mirror write pending or being tried, the tables empty."""
    statuses = set(mirror_rows().values_list("status", flat=True))
    assert statuses <= {OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING}, statuses
    assert dynamodb.item_count() == 0


def owned(item: dict[str, Any] | None, attributes: tuple[str, ...]) -> dict[str, Any] | None:
    return None if item is None else {name: item.get(name) for name in attributes}


def test_dynamodb_outage_while_50_submissions_move_through_their_stages_blocks_no_api_call_and_the_mirror_converges(
    api: APIClient,
    other_api: APIClient,
    pipeline: APIClient,
    other_pipeline: APIClient,
    dynamodb: Dynamo,
    worker: Worker,
) -> None:
    proxy, timings = dynamodb.proxy, Timings()
    tenants = [(api, pipeline), (other_api, other_pipeline)]

    # Refused: DynamoDB's port is closed, for the worker and for this (the web) process alike.
    proxy.down()
    with reaching(proxy.url):
        tracking_ids = [submit(tenants[i % 2][0], timings) for i in range(SUBMISSIONS)]
        wait_for(
            lambda: Submission.objects.filter(stage="queued").count() == SUBMISSIONS,
            timeout=120,
            what=f"the relay to queue every submission while DynamoDB is down\n{worker.log()[-3000:]}",
        )
        wait_for(
            lambda: mirror_rows().filter(attempts__gte=2).exists(),
            timeout=60,
            what=f"the worker to fail and retry mirror writes\n{worker.log()[-3000:]}",
        )
        assert_mirror_waits(dynamodb)

        # Hanging: connections are taken, and the requests on them never answered.
        proxy.hold("requests")
        proxy.up()
        assert proxy.held.wait(60), f"no request reached the hanging proxy\n{worker.log()[-3000:]}"
        for i, tracking_id in enumerate(tracking_ids):
            reporter = tenants[i % 2][1]
            if i % 4 == 0:
                continue  # left queued
            report(reporter, tracking_id, timings, eventId=f"{tracking_id}-1", stage="processing")
            if i % 4 == 2:
                report(
                    reporter, tracking_id, timings, eventId=f"{tracking_id}-2", stage="completed", catalogId=f"cat_{i}"
                )
            if i % 4 == 3:
                report(reporter, tracking_id, timings, eventId=f"{tracking_id}-2", stage="failed")
        assert_mirror_waits(dynamodb)

    proxy.release()
    wait_for(
        lambda: not OutboxMessage.objects.exclude(status=OutboxMessage.Status.SENT).exists(),
        timeout=180,
        what=f"every outbox message sent after recovery\n{worker.log()[-3000:]}",
    )

    # The tables hold exactly what Django holds, and reconcile agrees.
    submissions = Submission.objects.all()
    assert sorted(s.stage for s in submissions) == sorted(
        ["queued", "processing", "completed", "failed"][i % 4] for i in range(SUBMISSIONS)
    )
    tables = dynamodb.tables
    for submission in submissions:
        item = get_item(table=tables.catalog, key=catalog_key(submission))
        assert owned(item, CATALOG_ATTRIBUTES) == catalog_item(submission)
    for media in MediaUpload.objects.select_related("submission"):
        item = get_item(table=tables.upload_state, key=upload_state_key(media))
        assert owned(item, UPLOAD_STATE_ATTRIBUTES) == upload_state_item(media)
    assert dynamodb.item_count() == SUBMISSIONS * 3

    assert mirror_reconcile().drift == 0
    out = StringIO()
    call_command("dynamodb_reconcile", stdout=out)
    assert "drift: 0" in out.getvalue().splitlines(), out.getvalue()
