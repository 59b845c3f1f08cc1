"""Drift between Django and the DynamoDB mirror (moto in-process): `mirror_reconcile` and
`manage.py dynamodb_reconcile` find items that are missing, stale, differing, ahead or extra, in
the scope asked for, and --fix repairs what the portal owns through the outbox."""

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import Mirror
from tests.helpers import complete_body, create_upload, uploaded_submission
from uploads import dynamodb
from uploads.dynamodb import update_if_newer
from uploads.management.commands import dynamodb_reconcile
from uploads.models import MediaUpload, OutboxMessage, Submission
from uploads.services import outbox_relay
from uploads.services.drift import (
    ABSENT,
    AHEAD,
    DIFFERING,
    EXTRA,
    MISSING,
    STALE,
    MirrorOff,
    ReconcileReport,
    mirror_reconcile,
)
from uploads.services.mirror import iso

pytestmark = pytest.mark.django_db
Flow = Callable[..., str]


@pytest.fixture
def flow(mirror: Mirror, django_capture_on_commit_callbacks: Any) -> Flow:
    """A completed submission with its photo and audio, every mirror write relayed; returns its
    tracking id."""

    def run(api: APIClient) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            sent = uploaded_submission(api)
            assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
        outbox_relay()
        return sent["trackingId"]

    return run


def put(mirror: Mirror, table: str, item: dict[str, Any]) -> None:
    """Writes an item as someone outside the portal would: the whole item, no condition."""
    serialize = TypeSerializer().serialize
    mirror.client.put_item(TableName=table, Item={name: serialize(value) for name, value in item.items()})


def delete(mirror: Mirror, table: str, **key: str) -> None:
    mirror.client.delete_item(TableName=table, Key={name: {"S": value} for name, value in key.items()})


def kinds(report: ReconcileReport) -> list[tuple[str, str, str]]:
    return sorted((d.table, d.key, d.kind) for d in report.differences)


def mirror_rows() -> int:
    return OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR).count()


def reconcile(*args: str) -> tuple[int, list[str], list[str]]:
    """Runs the command; returns its exit status and its stdout and stderr lines."""
    out, err = StringIO(), StringIO()
    try:
        call_command("dynamodb_reconcile", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, out.getvalue().splitlines(), err.getvalue().splitlines()


# --- the comparison ----------------------------------------------------------------------------
def test_a_relayed_flow_leaves_no_drift(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    flow(api)
    report = mirror_reconcile()
    assert (report.checked, report.drift, report.fixed, report.differences) == (3, 0, 0, ())


def test_attributes_the_pipeline_owns_are_not_drift(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    mirror.pipeline_writes(tracking_id, processingStage="cataloguing", catalogId="cat_9", processingMessage="ok")
    assert mirror_reconcile().drift == 0


def test_a_deleted_item_is_missing_and_fix_restores_it(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    submission = Submission.objects.get(tracking_id=tracking_id)
    audio = submission.media.get(kind="audio")
    before = (mirror.catalog(tracking_id), mirror.upload_state(tracking_id))
    delete(mirror, mirror.tables.catalog, trackingId=tracking_id)
    delete(mirror, mirror.tables.upload_state, trackingId=tracking_id, mediaId=audio.media_id)

    report = mirror_reconcile(fix=True)
    assert kinds(report) == [
        ("catalog", tracking_id, MISSING),
        ("uploadState", f"{tracking_id}/{audio.media_id}", MISSING),
    ]
    assert (report.missing, report.drift, report.fixed) == (2, 2, 2)
    assert mirror.catalog(tracking_id) is None  # --fix only enqueues: the relay sends
    outbox_relay()
    assert (mirror.catalog(tracking_id), mirror.upload_state(tracking_id)) == before
    assert mirror_reconcile().drift == 0


def test_an_item_without_a_version_is_missing(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    mirror.client.update_item(
        TableName=mirror.tables.catalog, Key={"trackingId": {"S": tracking_id}}, UpdateExpression="REMOVE version"
    )
    assert kinds(mirror_reconcile()) == [("catalog", tracking_id, MISSING)]


def test_an_older_version_is_stale_with_the_attributes_that_differ(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    record = mirror.catalog(tracking_id)
    assert record is not None
    put(mirror, mirror.tables.catalog, {**record, "stage": "uploading", "version": record["version"] - 1})

    report = mirror_reconcile(fix=True)
    assert (report.stale, report.drift, report.fixed) == (1, 1, 1)
    [difference] = report.differences
    assert (difference.table, difference.key, difference.kind) == ("catalog", tracking_id, STALE)
    assert {(a.name, a.django, a.mirror) for a in difference.attributes} == {
        ("stage", "queued", "uploading"),
        ("version", record["version"], record["version"] - 1),
    }
    outbox_relay()
    assert mirror.catalog(tracking_id) == record
    assert mirror_reconcile().drift == 0


def test_an_owned_attribute_changed_at_the_same_version_is_differing_and_fix_repairs_it(
    api: APIClient, mirror: Mirror, flow: Flow
) -> None:
    tracking_id = flow(api)
    photo = MediaUpload.objects.get(submission__tracking_id=tracking_id, kind="photo")
    before = (mirror.catalog(tracking_id), mirror.upload_state(tracking_id)[photo.media_id])
    mirror.client.update_item(
        TableName=mirror.tables.catalog,
        Key={"trackingId": {"S": tracking_id}},
        UpdateExpression="SET message = :m",
        ExpressionAttributeValues={":m": {"S": "edited by hand"}},
    )
    mirror.client.update_item(
        TableName=mirror.tables.upload_state,
        Key={"trackingId": {"S": tracking_id}, "mediaId": {"S": photo.media_id}},
        UpdateExpression="SET #b = :b REMOVE contentType",
        ExpressionAttributeNames={"#b": "bucket"},
        ExpressionAttributeValues={":b": {"S": "old-bucket"}},
    )
    report = mirror_reconcile(fix=True)
    record, file = report.differences
    assert (record.kind, file.kind, report.differing, report.drift, report.fixed) == (DIFFERING, DIFFERING, 2, 2, 2)
    assert [(a.name, a.mirror) for a in record.attributes] == [("message", "edited by hand")]
    assert {(a.name, a.mirror) for a in file.attributes} == {("bucket", "old-bucket"), ("contentType", ABSENT)}
    # A change's own write never replaces its version; a repair does.
    outbox_relay()
    assert (mirror.catalog(tracking_id), mirror.upload_state(tracking_id)[photo.media_id]) == before
    assert mirror_reconcile().drift == 0


def test_a_repair_that_arrives_after_a_newer_write_changes_nothing(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    record = mirror.catalog(tracking_id)
    assert record is not None
    put(mirror, mirror.tables.catalog, {**record, "stage": "uploading", "version": record["version"] - 1})
    assert mirror_reconcile(fix=True).fixed == 1
    newer = {"stage": "processing", "version": record["version"] + 1}
    update_if_newer(table=mirror.tables.catalog, key={"trackingId": tracking_id}, attributes=newer)
    outbox_relay()
    assert mirror.catalog(tracking_id) == {**record, **newer}


def test_an_item_django_does_not_have_is_extra_and_fix_leaves_it(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    stray = {"trackingId": "trk_unknown", "tenantId": "tenant_a", "updatedAt": iso(timezone.now()), "version": 3}
    put(mirror, mirror.tables.catalog, stray)
    put(mirror, mirror.tables.upload_state, {**stray, "trackingId": tracking_id, "mediaId": "med_unknown"})
    photo = MediaUpload.objects.get(submission__tracking_id=tracking_id, kind="photo")
    put(mirror, mirror.tables.upload_state, {**stray, "mediaId": photo.media_id})  # a file, not of this submission
    rows = mirror_rows()

    report = mirror_reconcile(fix=True)
    assert kinds(report) == [
        ("catalog", "trk_unknown", EXTRA),
        ("uploadState", f"{tracking_id}/med_unknown", EXTRA),
        ("uploadState", f"trk_unknown/{photo.media_id}", EXTRA),
    ]
    assert (report.extra, report.drift, report.fixed, mirror_rows()) == (3, 3, 0, rows)
    outbox_relay()
    assert mirror.catalog("trk_unknown") == stray


def test_an_item_ahead_of_django_is_reported_and_never_rolled_back(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    update_if_newer(table=mirror.tables.catalog, key={"trackingId": tracking_id}, attributes={"version": 99})
    rows = mirror_rows()

    report = mirror_reconcile(fix=True)
    [difference] = report.differences
    assert (difference.kind, report.ahead, report.fixed, mirror_rows()) == (AHEAD, 1, 0, rows)
    assert [(a.name, a.mirror) for a in difference.attributes] == [("version", 99)]


# --- the scope ---------------------------------------------------------------------------------
def test_tenant_limits_the_check_to_that_tenants_rows_and_items(
    api: APIClient, other_api: APIClient, mirror: Mirror, flow: Flow
) -> None:
    flow(api)
    theirs = flow(other_api)
    delete(mirror, mirror.tables.catalog, trackingId=theirs)
    stray = {"trackingId": "trk_theirs", "tenantId": "tenant_b", "updatedAt": iso(timezone.now()), "version": 1}
    put(mirror, mirror.tables.catalog, stray)
    put(mirror, mirror.tables.upload_state, {**stray, "mediaId": "med_theirs"})

    report = mirror_reconcile(tenant_id="tenant_a")
    assert (report.checked, report.drift) == (3, 0)
    assert kinds(mirror_reconcile(tenant_id="tenant_b")) == [
        ("catalog", theirs, MISSING),
        ("catalog", "trk_theirs", EXTRA),
        ("uploadState", "trk_theirs/med_theirs", EXTRA),
    ]
    assert mirror_reconcile().drift == 3
    # An item filed under our tenant whose submission is another tenant's is not ours.
    put(mirror, mirror.tables.catalog, {**stray, "trackingId": theirs, "tenantId": "tenant_a"})
    assert kinds(mirror_reconcile(tenant_id="tenant_a")) == [("catalog", theirs, EXTRA)]


def test_since_limits_the_check_to_rows_and_items_updated_since(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    earlier = flow(api)
    since = timezone.now()
    later = flow(api)
    for tracking_id in (earlier, later):
        delete(mirror, mirror.tables.catalog, trackingId=tracking_id)
    old = iso(since - timedelta(days=1))
    put(mirror, mirror.tables.catalog, {"trackingId": "trk_old", "tenantId": "tenant_a", "updatedAt": old})
    put(mirror, mirror.tables.catalog, {"trackingId": "trk_new", "tenantId": "tenant_a", "updatedAt": iso(since)})
    for tracking_id, updated_at in (("trk_old", old), ("trk_new", iso(since))):
        put(
            mirror, mirror.tables.upload_state, {"trackingId": tracking_id, "mediaId": "med_1", "updatedAt": updated_at}
        )

    report = mirror_reconcile(since=since)
    assert report.checked == 3
    assert kinds(report) == [
        ("catalog", later, MISSING),
        ("catalog", "trk_new", EXTRA),
        ("uploadState", "trk_new/med_1", EXTRA),
    ]
    assert mirror_reconcile().drift == 6
    # Created before `since`, changed after it: in scope.
    Submission.objects.filter(tracking_id=earlier).update(updated_at=timezone.now())
    assert ("catalog", earlier, MISSING) in kinds(mirror_reconcile(since=since))


def test_paging_covers_every_row_in_pages_of_the_size_asked(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = [create_upload(api) for _ in range(7)]
    outbox_relay()
    first, last = created[0], created[-1]
    delete(mirror, mirror.tables.catalog, trackingId=first["trackingId"])
    delete(mirror, mirror.tables.upload_state, trackingId=last["trackingId"], mediaId=last["mediaId"])
    batches: list[int] = []
    batch_get = dynamodb.batch_get

    def counted(**kwargs: Any) -> list[dict[str, Any]]:
        batches.append(len(kwargs["keys"]))
        return batch_get(**kwargs)

    monkeypatch.setattr("uploads.services.drift.batch_get", counted)
    progress: list[tuple[int, int | None]] = []

    with CaptureQueriesContext(connection) as queries:
        report = mirror_reconcile(page_size=3, on_progress=lambda done, total: progress.append((done, total)))
    assert batches == [3, 3, 1, 3, 3, 1]
    assert len([q for q in queries.captured_queries if "LIMIT 3" in q["sql"]]) == 6  # Django, page by page
    assert report.checked == 14
    assert kinds(report) == [
        ("catalog", first["trackingId"], MISSING),
        ("uploadState", f"{last['trackingId']}/{last['mediaId']}", MISSING),
    ]
    # Rows, then items read by the scan; the total is twice the rows.
    assert [done for done, _ in progress[:6]] == [3, 6, 7, 10, 13, 14]
    assert progress[-1] == (14 + 12, 28)  # 7 + 7 items, one of each table deleted


def test_sample_bounds_the_differences_kept_not_the_counts(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    flow(api)
    for number in range(5):
        put(mirror, mirror.tables.catalog, {"trackingId": f"trk_{number}", "version": 1})
    report = mirror_reconcile(sample=2)
    assert (report.extra, len(report.differences)) == (5, 2)


def test_with_the_mirror_off_there_is_nothing_to_reconcile(db: None) -> None:
    with pytest.raises(MirrorOff, match=r"The mirror is off: set DYNAMODB_CATALOG_TABLE\."):
        mirror_reconcile()


# --- the command -------------------------------------------------------------------------------
def test_command_without_drift_prints_the_counts_and_exits_0(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    flow(api)
    status, out, err = reconcile()
    assert status == 0
    assert out == [
        "checked: 3",
        "missing: 0",
        "stale: 0",
        "differing: 0",
        "ahead: 0",
        "extra: 0",
        "fixed: 0",
        "drift: 0",
    ]
    assert err == []


def test_command_with_drift_prints_the_first_differences_and_exits_1(
    api: APIClient, mirror: Mirror, flow: Flow
) -> None:
    tracking_id = flow(api)
    record = mirror.catalog(tracking_id)
    assert record is not None
    put(mirror, mirror.tables.catalog, {**record, "stage": "uploading", "version": record["version"] - 1})
    audio = MediaUpload.objects.get(submission__tracking_id=tracking_id, kind="audio")
    delete(mirror, mirror.tables.upload_state, trackingId=tracking_id, mediaId=audio.media_id)
    rows = mirror_rows()

    status, out, _ = reconcile("--sample", "1")
    assert status == dynamodb_reconcile.DRIFT == 1
    assert "stale: 1" in out and "missing: 1" in out and "drift: 2" in out
    assert out[-2:] == [
        "First 1 of 2 differences:",
        f'  catalog {tracking_id}: stale: stage "queued" (mirror "uploading"), '
        f"version {record['version']} (mirror {record['version'] - 1})",
    ]
    assert mirror_rows() == rows  # without --fix, nothing is enqueued


def test_command_fix_exits_0_when_it_enqueued_every_repair(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    delete(mirror, mirror.tables.catalog, trackingId=tracking_id)
    status, out, _ = reconcile("--fix")
    assert (status, "missing: 1" in out, "fixed: 1" in out) == (0, True, True)
    outbox_relay()
    assert reconcile()[0] == 0


def test_command_fix_exits_1_when_drift_it_never_touches_remains(api: APIClient, mirror: Mirror, flow: Flow) -> None:
    tracking_id = flow(api)
    delete(mirror, mirror.tables.catalog, trackingId=tracking_id)
    put(mirror, mirror.tables.catalog, {"trackingId": "trk_unknown", "version": 1})
    status, out, _ = reconcile("--fix")
    assert (status, "fixed: 1" in out, "extra: 1" in out) == (1, True, True)
    assert out[-3:] == ["Differences:", f"  catalog {tracking_id}: missing", "  catalog trk_unknown: extra"]


def test_command_prints_progress_to_stderr(
    api: APIClient, mirror: Mirror, flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow(api)
    monkeypatch.setattr(dynamodb_reconcile, "PROGRESS_EVERY", 2)
    status, _, err = reconcile("--page-size", "1")
    assert status == 0
    assert err[:2] == ["checked 2 of ~6 rows and items", "checked 4 of ~6 rows and items"]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2030-01-02", "2030-01-02T00:00:00.000Z"),
        ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05.000Z"),
        ("2030-01-02T03:04:05", "2030-01-02T03:04:05.000Z"),
        ("2030-01-02T08:34:05+05:30", "2030-01-02T03:04:05.000Z"),
    ],
)
def test_command_since_takes_a_date_or_an_iso_time_in_utc(
    since: str, expected: str, mirror: Mirror, monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> ReconcileReport:
        seen.update(kwargs)
        return ReconcileReport(0, 0, 0, 0, 0, 0, 0, ())

    monkeypatch.setattr(dynamodb_reconcile, "mirror_reconcile", fake)
    assert reconcile("--since", since)[0] == 0
    assert iso(seen["since"]) == expected


def test_command_refuses_a_since_that_is_no_date(mirror: Mirror, db: None) -> None:
    with pytest.raises(CommandError, match="not a date or an ISO 8601 time"):
        call_command("dynamodb_reconcile", "--since", "yesterday")


def test_command_refuses_a_page_size_below_1(mirror: Mirror, db: None) -> None:
    with pytest.raises(CommandError, match="--page-size must be at least 1"):
        call_command("dynamodb_reconcile", "--page-size", "0")


def test_command_refuses_an_unknown_tenant(mirror: Mirror, tenant: Any) -> None:
    with pytest.raises(CommandError, match="No tenant 'tenant_x'") as raised:
        call_command("dynamodb_reconcile", "--tenant", "tenant_x")
    assert raised.value.returncode == 2


def test_command_with_the_mirror_off_says_how_to_turn_it_on(db: None) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("dynamodb_reconcile")
    assert (str(raised.value), raised.value.returncode) == ("The mirror is off: set DYNAMODB_CATALOG_TABLE.", 2)


def test_command_with_dynamodb_unreachable_exits_2_with_one_line(
    settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: None
) -> None:
    settings.DYNAMODB_CATALOG_TABLE = "CatalogProcessingRecords"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens: refused
    with pytest.raises(SystemExit) as raised:
        ManagementUtility(["manage.py", "dynamodb_reconcile"]).execute()
    assert raised.value.code == 2
    err = capsys.readouterr().err
    # Lines before it, if any, are the log's (botocore at INFO), not the command's.
    assert "Traceback" not in err
    line = err.splitlines()[-1]
    assert line.startswith("CommandError: DynamoDB did not answer (")
    assert line.endswith("); the check stopped.")


def test_command_help_explains_the_counts_fix_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        ManagementUtility(["manage.py", "dynamodb_reconcile", "--help"]).execute()
    shown = capsys.readouterr().out
    for phrase in ("differing  same version", "--fix only enqueues", "the relay", "Exit status:", "  2  the check"):
        assert phrase in shown
