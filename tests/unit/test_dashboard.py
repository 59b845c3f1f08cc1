"""The admin index is a triage dashboard of the staff member's own tenants: figures from a
constant number of queries, cached briefly, rendered without scripts."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import Tenant
from tests.helpers import staff_client, superuser_client
from uploads.dashboard import (
    complete_to_queued_delays,
    dashboard_for,
    duration_display,
    hour_starts,
    median_duration,
)
from uploads.dashboard_chart import HourBucket, hourly_chart_svg
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)


def submission(tenant: Tenant, stage: str = Stage.UPLOADING, idle: timedelta = timedelta(0)) -> Submission:
    return Submission.objects.create(
        tenant=tenant, artisan_id="art_1", stage=stage, last_progress_at=timezone.now() - idle
    )


def event(sub: Submission, action: str, at: datetime) -> Event:
    row = Event.objects.create(submission=sub, actor="test", action=action)
    Event.objects.filter(pk=row.pk).update(created_at=at)
    return row


def finished_file(sub: Submission, size: int, at: datetime, status: str = MediaStatus.UPLOADED) -> MediaUpload:
    row = MediaUpload.objects.create(
        submission=sub,
        kind="photo",
        content_type="image/jpeg",
        object_key=f"{sub.tenant_id}/art_1/{sub.tracking_id}/{size}-{at.timestamp()}.jpg",
        strategy="single",
        status=status,
        size=size,
        expires_at=at + timedelta(days=1),
    )
    MediaUpload.objects.filter(pk=row.pk).update(updated_at=at)
    return row


def failed_message(sub: Submission, error: str = "queue unreachable") -> OutboxMessage:
    return OutboxMessage.objects.create(
        dedup_key=f"status:{sub.tracking_id}:{OutboxMessage.objects.count()}",
        topic=OutboxMessage.Topic.STATUS,
        submission=sub,
        body={},
        status=OutboxMessage.Status.FAILED,
        attempts=5,
        last_error=error,
    )


# --- scoping ----------------------------------------------------------------------------------
def test_staff_index_shows_only_their_tenants_ids_counts_and_stuck_rows(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = submission(tenant, idle=timedelta(hours=2))
    theirs = submission(other_tenant, idle=timedelta(hours=3))
    failed_message(theirs)
    for _ in range(4):
        submission(other_tenant, Stage.FAILED)
    page = staff_client(tenant).get("/admin/")
    html = page.content.decode()
    assert page.status_code == 200
    assert mine.tracking_id in html
    assert theirs.tracking_id not in html
    assert "tenant_b" not in html
    assert "Stuck: 1<" in html
    assert "Failed messages: 0<" in html
    assert page.context["dashboard"].total == 1


def test_superuser_index_shows_every_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = submission(tenant, idle=timedelta(hours=2))
    theirs = submission(other_tenant, idle=timedelta(hours=3))
    html = superuser_client().get("/admin/").content.decode()
    assert mine.tracking_id in html and theirs.tracking_id in html
    assert "tenant_a" in html and "tenant_b" in html
    assert "Stuck: 2<" in html


def test_staff_without_membership_gets_no_dashboard(db: Any, tenant: Tenant) -> None:
    submission(tenant, idle=timedelta(hours=2))
    page = staff_client(None).get("/admin/")
    assert page.status_code == 200  # Django's own "no permission to view or edit anything" index
    assert page.context["dashboard"] is None
    assert 'class="triage"' not in page.content.decode()


def test_anonymous_index_goes_to_login(db: Any) -> None:
    response = Client().get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_counts_form_one_tenant_by_stage_table_with_totals(tenant: Tenant, other_tenant: Tenant) -> None:
    submission(tenant, Stage.UPLOADING)
    submission(tenant, Stage.UPLOADING)
    submission(tenant, Stage.FAILED)
    submission(other_tenant, Stage.COMPLETED)
    board = dashboard_for(tenant_ids=None)
    rows = {row.tenant_id: dict(zip(board.stages, row.counts, strict=True)) for row in board.tenants}
    assert rows["tenant_a"]["uploading"] == 2 and rows["tenant_a"]["failed"] == 1
    assert rows["tenant_b"]["completed"] == 1 and rows["tenant_b"]["uploading"] == 0
    assert board.total == 4
    assert dict(zip(board.stages, board.stage_totals, strict=True))["uploading"] == 2
    scoped = dashboard_for(tenant_ids={"tenant_b"})
    assert [row.tenant_id for row in scoped.tenants] == ["tenant_b"] and scoped.total == 1


def test_a_staff_tenant_without_submissions_still_has_its_row(tenant: Tenant) -> None:
    board = dashboard_for(tenant_ids={"tenant_a"})
    assert [(row.tenant_id, row.total) for row in board.tenants] == [("tenant_a", 0)]


# --- figures ----------------------------------------------------------------------------------
def test_hourly_figures_are_24_buckets_with_empty_hours_zero(tenant: Tenant, other_tenant: Tenant) -> None:
    sub = submission(tenant)
    theirs = submission(other_tenant)
    event(sub, "submission.completed", NOW - timedelta(minutes=10))  # this hour
    event(sub, "submission.completed", NOW - timedelta(minutes=20))
    event(sub, "submission.completed", NOW - timedelta(hours=5, minutes=1))
    event(sub, "submission.completed", NOW - timedelta(hours=30))  # outside the window
    event(sub, "submission.queued", NOW - timedelta(minutes=5))  # not a completion
    event(theirs, "submission.completed", NOW - timedelta(minutes=10))
    finished_file(sub, 1_000, NOW - timedelta(minutes=2))
    finished_file(sub, 500, NOW - timedelta(minutes=50))  # 11:40: the hour before
    finished_file(sub, 7_000, NOW - timedelta(minutes=3), status=MediaStatus.PENDING)  # not finished
    finished_file(theirs, 9_000, NOW - timedelta(minutes=2))

    board = dashboard_for(tenant_ids={"tenant_a"}, now=NOW)
    assert len(board.hours) == 24
    assert board.hours[-1].start == datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert board.hours[0].start == datetime(2025, 3, 9, 13, tzinfo=UTC)
    by_hour = {b.start.hour: (b.completions, b.bytes) for b in board.hours}
    assert by_hour[12] == (2, 1_000)
    assert by_hour[11] == (0, 500)
    assert by_hour[7] == (1, 0)
    assert board.completions_24h == 3 and board.bytes_24h == 1_500
    assert sum(1 for b in board.hours if (b.completions, b.bytes) == (0, 0)) == 21


def test_stuck_rows_are_the_oldest_ten_with_the_full_count(tenant: Tenant, other_tenant: Tenant) -> None:
    rows = [submission(tenant, idle=timedelta(hours=1, minutes=i)) for i in range(12)]
    submission(tenant, Stage.COMPLETED, idle=timedelta(days=3))  # final: never stuck
    submission(tenant, idle=timedelta(minutes=5))  # recent progress
    submission(other_tenant, idle=timedelta(days=2))
    board = dashboard_for(tenant_ids={"tenant_a"})
    assert board.stuck_count == 12
    assert [row.tracking_id for row in board.stuck] == [s.tracking_id for s in reversed(rows)][:10]


def test_failed_messages_are_counted_and_the_newest_listed(tenant: Tenant, other_tenant: Tenant) -> None:
    sub = submission(tenant)
    mine = [failed_message(sub, f"error {i}") for i in range(11)]
    sent = failed_message(sub, "sent after all")
    OutboxMessage.objects.filter(pk=sent.pk).update(status=OutboxMessage.Status.SENT)
    failed_message(submission(other_tenant))
    board = dashboard_for(tenant_ids={"tenant_a"})
    assert board.failed_count == 11
    assert [row.last_error for row in board.failed] == [m.last_error for m in reversed(mine)][:10]
    assert {row.tracking_id for row in board.failed} == {sub.tracking_id}


def test_index_links_failed_messages_and_stuck_rows(tenant: Tenant) -> None:
    sub = submission(tenant, idle=timedelta(hours=2))
    failed_message(sub, "<b>refused</b>")
    html = staff_client(tenant).get("/admin/").content.decode()
    assert "/admin/uploads/outboxmessage/?status__exact=failed" in html
    assert f'href="/admin/uploads/submission/{sub.pk}/change/"' in html
    assert "&lt;b&gt;refused&lt;/b&gt;" in html and "<b>refused" not in html
    assert 'class="stage-badge stage-uploading"' in html


def test_index_formats_counts_with_thousands_separators(tenant: Tenant) -> None:
    Submission.objects.bulk_create(Submission(tenant=tenant, artisan_id="a", stage=Stage.QUEUED) for _ in range(1_234))
    html = staff_client(tenant).get("/admin/").content.decode()
    assert ">1,234<" in html


def test_median_complete_to_queued_pairs_each_completion_with_the_next_queued(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    for seconds in (2, 4, 60):
        sub = submission(tenant)
        event(sub, "submission.completed", NOW - timedelta(hours=1, seconds=seconds))
        event(sub, "submission.queued", NOW - timedelta(hours=1))
    retried = submission(tenant)  # completed two days ago, queued again by staff today: no measure
    event(retried, "submission.completed", NOW - timedelta(days=2))
    event(retried, "submission.queued", NOW - timedelta(days=2) + timedelta(seconds=1))
    event(retried, "submission.queued", NOW - timedelta(hours=2))
    slow = submission(other_tenant)
    event(slow, "submission.completed", NOW - timedelta(hours=3))
    event(slow, "submission.queued", NOW - timedelta(hours=2))
    assert dashboard_for(tenant_ids={"tenant_a"}, now=NOW).median_complete_to_queued == timedelta(seconds=4)
    assert dashboard_for(tenant_ids=None, now=NOW).median_complete_to_queued == timedelta(seconds=32)


def test_median_is_a_dash_without_queued_events(tenant: Tenant) -> None:
    board = dashboard_for(tenant_ids={"tenant_a"})
    assert board.median_complete_to_queued is None
    assert board.median_display == "—"
    assert "complete → queued <strong>—</strong>" in staff_client(tenant).get("/admin/").content.decode()


def test_delays_pair_completion_and_queue_per_submission() -> None:
    t = NOW
    completed = [(1, t), (2, t), (3, t)]
    queued = [(1, t + timedelta(seconds=3)), (2, t + timedelta(seconds=1)), (1, t + timedelta(seconds=9)), (4, t)]
    assert sorted(complete_to_queued_delays(completed=completed, queued=queued)) == [
        timedelta(seconds=1),
        timedelta(seconds=3),
    ]
    later = complete_to_queued_delays(completed=completed, queued=queued, since=t + timedelta(seconds=2))
    assert later == [timedelta(seconds=3)]
    assert median_duration([timedelta(seconds=1), timedelta(seconds=3)]) == timedelta(seconds=2)
    assert median_duration([]) is None


@pytest.mark.parametrize(
    ("delay", "shown"),
    [(timedelta(milliseconds=850), "850 ms"), (timedelta(seconds=2.5), "2.5 s"), (timedelta(seconds=185), "3 min 5 s")],
)
def test_durations_read_at_a_glance(delay: timedelta, shown: str) -> None:
    assert duration_display(delay) == shown


# --- the chart --------------------------------------------------------------------------------
def buckets() -> list[HourBucket]:
    return [HourBucket(start=start, completions=i % 4, bytes=1024 * i) for i, start in enumerate(hour_starts(NOW))]


def test_chart_has_a_bar_and_a_tooltip_per_hour_and_an_accessible_summary() -> None:
    svg = hourly_chart_svg(buckets())
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r'<rect class="bar"', svg)) == 24
    assert len(re.findall(r"<title>", svg)) == 24
    assert "<title>12:00\u201313:00: 3 completion(s), 23.0\xa0KB</title>" in svg
    assert 'role="img"' in svg
    label = re.search(r'aria-label="([^"]*)"', svg)
    assert label is not None and "36 completion(s)" in label.group(1)
    assert "<script" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_chart_escapes_what_it_is_given() -> None:
    svg = hourly_chart_svg(buckets(), caption='<script>alert("x")</script> & co')
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in svg


def test_chart_of_an_idle_day_draws_flat_bars() -> None:
    idle = [HourBucket(start=s, completions=0, bytes=0) for s in hour_starts(NOW)]
    svg = hourly_chart_svg(idle)
    assert len(re.findall(r'<rect class="bar"[^>]*height="0.0"', svg)) == 24
    assert "busiest" not in svg


# --- cost -------------------------------------------------------------------------------------
def test_a_second_call_is_served_from_the_cache(tenant: Tenant, django_assert_num_queries: Any) -> None:
    submission(tenant)
    first = dashboard_for(tenant_ids={"tenant_a"})
    submission(tenant)
    with django_assert_num_queries(0):
        second = dashboard_for(tenant_ids=["tenant_a"])
    assert second == first and second.total == 1


def test_tenant_sets_do_not_share_a_cache_entry(tenant: Tenant, other_tenant: Tenant) -> None:
    submission(tenant)
    submission(other_tenant)
    submission(other_tenant)
    assert dashboard_for(tenant_ids={"tenant_a"}).total == 1
    assert dashboard_for(tenant_ids={"tenant_b"}).total == 2
    assert dashboard_for(tenant_ids={"tenant_a", "tenant_b"}).total == 3
    assert dashboard_for(tenant_ids=None).total == 3
    assert dashboard_for(tenant_ids=set()).total == 0


def test_cache_lasts_the_configured_seconds(tenant: Tenant, settings: Any) -> None:
    settings.ADMIN_DASHBOARD_CACHE_SECONDS = 0  # Django: a timeout of 0 expires at once
    submission(tenant)
    assert dashboard_for(tenant_ids={"tenant_a"}).total == 1
    submission(tenant)
    assert dashboard_for(tenant_ids={"tenant_a"}).total == 2


def populate(tenants: list[Tenant], per_tenant: int) -> None:
    for tenant in tenants:
        for i in range(per_tenant):
            sub = submission(tenant, idle=timedelta(hours=1 + i))
            event(sub, "submission.completed", timezone.now() - timedelta(minutes=30 + i))
            event(sub, "submission.queued", timezone.now() - timedelta(minutes=29 + i))
            finished_file(sub, 100 + i, timezone.now() - timedelta(minutes=i))
            failed_message(sub)


def dashboard_queries(tenant_ids: set[str] | None) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        dashboard_for(tenant_ids=tenant_ids)
    return len(queries)


def test_dashboard_query_count_is_constant_in_the_number_of_rows(
    tenant: Tenant, other_tenant: Tenant, django_assert_max_num_queries: Any
) -> None:
    populate([tenant, other_tenant], 3)
    few = (dashboard_queries(None), dashboard_queries({"tenant_a"}))
    populate([tenant, other_tenant], 27)
    assert (dashboard_queries(None), dashboard_queries({"tenant_a"})) == few
    cache.clear()
    with django_assert_max_num_queries(10):
        dashboard_for(tenant_ids={"tenant_a"})


def test_index_query_count_is_constant_in_the_number_of_rows(tenant: Tenant, other_tenant: Tenant) -> None:
    client = staff_client(tenant)
    populate([tenant, other_tenant], 3)
    cache.clear()
    with CaptureQueriesContext(connection) as few:
        assert client.get("/admin/").status_code == 200
    populate([tenant, other_tenant], 27)
    cache.clear()
    with CaptureQueriesContext(connection) as many:
        assert client.get("/admin/").status_code == 200
    assert len(many) == len(few)
