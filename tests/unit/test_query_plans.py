"""The hot queries read their rows through an index on PostgreSQL: the API key by its hash, the
submission by tracking id and its files by submission, the file by media id, a file's parts,
the outbox claim and the count of a tenant's open uploads (its own, not every tenant's).

Honest plans need honest tables. The module seeds thousands of rows (submissions and files in
every stage with the seeding command, parts, sent outbox messages, API keys, two tenants),
commits them and runs ANALYZE, so the planner judges them by real statistics, as it would a
production database; nothing turns sequential scans off. On an empty or unanalyzed table a
sequential scan is the right plan and would prove nothing. The queries are the ones the code
runs (captured while calling the selectors and services), EXPLAINed as sent; EXPLAIN without
ANALYZE executes nothing."""

import io
import json
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_authenticate, api_key_create, hash_api_key, tenant_create
from uploads import selectors
from uploads.models import MediaUpload, OutboxMessage, Stage, Strategy, Submission, UploadPart
from uploads.services import media_initiate, media_record_part
from uploads.services.caps import tenant_in_flight
from uploads.services.outbox import outbox_relay

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="EXPLAIN plans are PostgreSQL's (production's database); CI runs this module on PostgreSQL too",
)

SUBMISSIONS = 3_000  # per tenant: about 100 heap pages of submissions, 200 of files
PARTS_PER_FILE = 10
OUTBOX_ROWS = 3_000
API_KEYS = 1_000
# The tables that grow with use; a sequential scan of any of them on a hot path is a bug.
GROWING = {"tenants_apikey", "uploads_submission", "uploads_mediaupload", "uploads_uploadpart", "uploads_outboxmessage"}
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}
TENANTS = ("plans_a", "plans_b")


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Committed rows for the module, ANALYZEd; removed (and the statistics reset) afterwards."""
    with django_db_blocker.unblock():
        try:
            _seed()
            yield
        finally:
            _unseed()


def _seed() -> None:
    for tenant_id in TENANTS:
        tenant_create(tenant_id=tenant_id, name=tenant_id)
        call_command(
            "seed_submissions", count=SUBMISSIONS, tenant=tenant_id, seed=12, stdout=io.StringIO(), stderr=io.StringIO()
        )
        ApiKey.objects.bulk_create(
            ApiKey(tenant_id=tenant_id, prefix=f"cup_{tenant_id}{n}", hashed_key=os.urandom(32).hex())
            for n in range(API_KEYS // len(TENANTS))
        )
    multipart = MediaUpload.objects.filter(strategy=Strategy.MULTIPART).values_list("pk", flat=True)[:500]
    UploadPart.objects.bulk_create(
        UploadPart(media_id=pk, part_number=n, size=8 * 1024 * 1024, etag=f'"{os.urandom(16).hex()}"')
        for pk in multipart
        for n in range(1, PARTS_PER_FILE + 1)
    )
    submissions = list(Submission.objects.values_list("pk", "tracking_id")[:OUTBOX_ROWS])
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            dedup_key=f"status:{tracking_id}:6",
            topic=OutboxMessage.Topic.STATUS,
            submission_id=pk,
            body={"trackingId": tracking_id},
            status=OutboxMessage.Status.SENT,
            attempts=1,
            sent_at=now,
        )
        for pk, tracking_id in submissions
    )
    _analyze()


def _unseed() -> None:
    Submission.objects.filter(tenant_id__in=TENANTS).delete()  # files, parts, events, outbox rows with them
    Tenant.objects.filter(pk__in=TENANTS).delete()  # and their API keys
    _analyze()


def _analyze() -> None:
    with connection.cursor() as cursor:
        for table in sorted(GROWING | {"tenants_tenant", "uploads_event"}):
            cursor.execute(f"ANALYZE {table}")


# --- reading plans ---------------------------------------------------------------------------
def plan_of(sql: str, *, analyze: bool = False) -> dict[str, Any]:
    """The plan; with `analyze`, also what running it did (it runs: for reads only)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def reads_of(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The plan nodes that read `table`, each with the index condition it reads it by ("" for none).
    A bitmap heap scan reads by the condition of the bitmap index scan beneath it."""
    found = []
    for node in nodes(plan):
        if node.get("Relation Name") != table or node["Node Type"] == "ModifyTable":
            continue  # a ModifyTable node writes the rows its child scan found
        condition = node.get("Index Cond", "")
        if node["Node Type"] == "Bitmap Heap Scan":
            condition = " AND ".join(n.get("Index Cond", "") for n in nodes(node) if n["Node Type"] in INDEX_SCANS)
        found.append({"type": node["Node Type"], "index": node.get("Index Name", ""), "condition": condition})
    return found


def captured(action: Callable[[], object]) -> list[str]:
    """The SELECT, UPDATE and DELETE statements `action` sends, as sent."""
    with CaptureQueriesContext(connection) as queries:
        action()
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))
    ]


def assert_no_sequential_scan_of_a_growing_table(statements: list[str]) -> None:
    assert statements
    for sql in statements:
        plan = plan_of(sql)
        scanned = {n["Relation Name"] for n in nodes(plan) if n["Node Type"] == "Seq Scan"} & GROWING
        assert not scanned, f"sequential scan of {scanned}:\n{sql}\n{json.dumps(plan, indent=1)}"


def assert_read_by_index(statements: list[str], table: str, *columns: str) -> None:
    """Every read of `table` goes through an index, and one of them by a condition that names
    each of `columns` (the lookup itself; the others are updates by primary key and the like)."""
    reads = [(sql, read) for sql in statements for read in reads_of(plan_of(sql), table)]
    assert reads, f"no statement reads {table}"
    for sql, read in reads:
        assert read["condition"], f"{table} read without an index ({read['type']}):\n{sql}"
    by_columns = [read for _, read in reads if all(_names(read["condition"], c) for c in columns)]
    assert by_columns, f"{table} is read by {[r['condition'] for _, r in reads]}, none by {columns}"


def _names(condition: str, column: str) -> bool:
    return f"({column} " in condition or f"({column})" in condition or f".{column} " in condition


# --- the hot queries -------------------------------------------------------------------------
@pytest.fixture
def tenant(seeded: None, db: None) -> Tenant:
    return Tenant.objects.get(pk=TENANTS[0])


def a_submission(tenant: Tenant, stage: Stage = Stage.COMPLETED) -> Submission:
    return Submission.objects.filter(tenant=tenant, stage=stage).order_by("pk")[SUBMISSIONS // 20]


def test_api_key_is_found_by_its_hash(tenant: Tenant) -> None:
    _, raw = api_key_create(tenant=tenant)
    statements = captured(lambda: api_key_authenticate(raw_key=raw))
    assert_read_by_index(statements, "tenants_apikey", "hashed_key")
    assert_no_sequential_scan_of_a_growing_table(statements)
    assert hash_api_key(raw) in statements[0]  # the lookup itself was captured


def test_status_reads_the_submission_by_tracking_id_and_its_files_by_submission(tenant: Tenant) -> None:
    submission = a_submission(tenant)
    statements = captured(lambda: selectors.submission_status(tenant=tenant, tracking_id=submission.tracking_id))
    assert_read_by_index(statements, "uploads_submission", "tracking_id")
    assert_read_by_index(statements, "uploads_mediaupload", "submission_id")
    assert_no_sequential_scan_of_a_growing_table(statements)


def test_an_artisan_scoped_submission_is_still_found_by_tracking_id(tenant: Tenant) -> None:
    submission = a_submission(tenant)
    statements = captured(
        lambda: selectors.submission_get(
            tenant=tenant, tracking_id=submission.tracking_id, artisan_id=submission.artisan_id
        )
    )
    assert_read_by_index(statements, "uploads_submission", "tracking_id")


def test_a_file_is_found_by_media_id(tenant: Tenant) -> None:
    media = MediaUpload.objects.filter(submission=a_submission(tenant)).first()
    assert media is not None
    statements = captured(lambda: selectors.media_get(tenant=tenant, media_id=media.media_id))
    assert_read_by_index(statements, "uploads_mediaupload", "media_id")
    assert_read_by_index(statements, "uploads_submission", "id")
    assert_no_sequential_scan_of_a_growing_table(statements)


def test_recording_a_part_finds_it_by_file_and_part_number(tenant: Tenant) -> None:
    initiated = media_initiate(
        tenant=tenant, artisan_id="art_plans", content_type="audio/ogg", file_size=10 * 1024 * 1024, actor="test"
    )
    media = selectors.media_get(tenant=tenant, media_id=initiated.media.media_id)
    assert initiated.plan is not None
    size = initiated.plan.size_of(2)
    media_record_part(media=media, part_number=1, size=initiated.plan.size_of(1), etag='"a"', actor="test")
    statements = captured(lambda: media_record_part(media=media, part_number=2, size=size, etag='"b"', actor="test"))
    assert_read_by_index(statements, "uploads_uploadpart", "media_id", "part_number")
    assert_no_sequential_scan_of_a_growing_table(statements)


def test_the_parts_of_a_file_are_read_by_its_index(tenant: Tenant) -> None:
    media_id = UploadPart.objects.values_list("media_id", flat=True).first()
    # As the storage inspection compares them, and as the admin pages through them.
    every = UploadPart.objects.filter(media_id=media_id).values_list("part_number", "size", "etag")
    page = UploadPart.objects.filter(media_id=media_id).order_by("part_number")[:100]
    statements = captured(lambda: (list(every), list(page)))
    assert_read_by_index(statements, "uploads_uploadpart", "media_id")
    assert_no_sequential_scan_of_a_growing_table(statements)


def test_the_outbox_claim_reads_due_rows_by_status(tenant: Tenant) -> None:
    OutboxMessage.objects.create(
        dedup_key="plans:later",
        topic=OutboxMessage.Topic.STATUS,
        body={},
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    statements = captured(lambda: outbox_relay(limit=100))
    assert_read_by_index(statements, "uploads_outboxmessage", "status")
    assert_no_sequential_scan_of_a_growing_table(statements)
    assert OutboxMessage.objects.get(dedup_key="plans:later").status == OutboxMessage.Status.PENDING  # not due


def test_one_topics_claim_does_not_walk_another_topics_backlog(tenant: Tenant) -> None:
    """While DynamoDB is down the mirror's rows pile up, due (a relay stops a topic whose
    destination takes nothing, without spending their attempts): one per recorded part. The
    status and processing claims must not read past them on every relay run."""
    statements = captured(lambda: outbox_relay(limit=100))
    status_claim = next(sql for sql in statements if "FOR UPDATE" in sql and "= 'status'" in sql)
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            dedup_key=f"plans:backlog:{n}",
            topic=OutboxMessage.Topic.MIRROR,
            body={},
            next_attempt_at=timezone.now() - timedelta(hours=1),  # due for the claim captured above
        )
        for n in range(5_000)
    )
    _analyze()
    plan = plan_of(status_claim, analyze=True)
    assert_read_by_index([status_claim], "uploads_outboxmessage", "status", "topic")
    assert sum(node.get("Rows Removed by Filter", 0) for node in nodes(plan)) == 0, json.dumps(plan, indent=1)


def test_a_tenants_open_uploads_are_counted_without_reading_another_tenants(tenant: Tenant) -> None:
    """The cap's count at initiate reads the tenant's own open files and no other row, by the
    tenant of their keys, however many the other tenant has open (5,000 here, beside a few)."""
    other = Submission.objects.filter(tenant_id=TENANTS[1]).order_by("pk").first()
    assert other is not None
    MediaUpload.objects.bulk_create(
        MediaUpload(
            submission=other,
            kind="photo",
            content_type="image/jpeg",
            declared_size=100,
            object_key=f"{TENANTS[1]}/art_open/{other.tracking_id}/med_{n:024x}.jpg",
            strategy=Strategy.SINGLE,
            expires_at=timezone.now() + timedelta(hours=1),
        )
        for n in range(5_000)
    )
    _analyze()
    now = timezone.now()
    statements = captured(lambda: tenant_in_flight(tenant=tenant, now=now))
    assert_read_by_index(statements, "uploads_mediaupload", "object_key")
    assert_no_sequential_scan_of_a_growing_table(statements)
    plan = plan_of(statements[-1], analyze=True)
    read = [node for node in nodes(plan) if node.get("Relation Name") == "uploads_mediaupload"]
    assert sum(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) for node in read) == (
        tenant_in_flight(tenant=tenant, now=now).open_uploads
    ), json.dumps(plan, indent=1)


def test_the_other_tenants_rows_are_there_too(tenant: Tenant) -> None:
    """The plans above are judged beside a second tenant's rows, not over one tenant alone."""
    assert Submission.objects.filter(tenant_id=TENANTS[1]).count() == SUBMISSIONS
    assert MediaUpload.objects.count() >= 2 * 2 * SUBMISSIONS


def test_a_read_without_an_index_is_caught(tenant: Tenant) -> None:
    """The checks above can fail: with these statistics, a column without an index is scanned."""
    statements = captured(lambda: list(Submission.objects.filter(catalog_id="cat_none")))
    with pytest.raises(AssertionError, match="sequential scan"):
        assert_no_sequential_scan_of_a_growing_table(statements)
    with pytest.raises(AssertionError, match="without an index"):
        assert_read_by_index(statements, "uploads_submission", "catalog_id")
