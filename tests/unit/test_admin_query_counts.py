"""The admin pages staff reload all day cost a number of queries that does not grow with the
rows behind them: the submission list with 5 or 50 rows, a submission page whose file has 20
or 2,000 recorded parts, the dashboard over 3 or 30 submissions. Each pair is compared for
equality (no magic numbers to keep in step with the page), under a pinned upper bound."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tenants.models import Membership, Tenant
from tests.helpers import media_row, record_parts, staff_client, superuser_client
from uploads.models import (
    Event,
    MediaKind,
    MediaStatus,
    MediaUpload,
    OutboxMessage,
    Stage,
    Submission,
    UploadPart,
)

pytestmark = pytest.mark.django_db

PART = 64 * 1024
# Upper bounds: what each page costs today, plus a little room; a change that adds a query per
# row blows through them long before it reaches the row counts used here.
MAX_CHANGELIST_QUERIES = 12
MAX_SUBMISSION_PAGE_QUERIES = 20
MAX_DASHBOARD_QUERIES = 18


def submissions(tenant: Tenant, count: int) -> list[Submission]:
    """`count` submissions in turn uploading, failed (with a failed message) and completed, each
    with a photo and a multipart audio with recorded parts, and a timeline."""
    stages = [Stage.UPLOADING, Stage.FAILED, Stage.COMPLETED]
    made = []
    for n in range(count):
        stage = stages[n % len(stages)]
        row = Submission.objects.create(
            tenant=tenant,
            artisan_id=f"art_{n}",
            stage=stage,
            language="hi",
            last_progress_at=timezone.now() - timedelta(hours=2),
            error_details={"reason": "blurry photo"} if stage == Stage.FAILED else None,
        )
        done = MediaStatus.PENDING if stage == Stage.UPLOADING else MediaStatus.UPLOADED
        media_row(row, MediaKind.PHOTO, status=done)
        media_row(row, MediaKind.AUDIO, status=done, part_count=4, parts=3 if done == MediaStatus.PENDING else 4)
        Event.objects.create(submission=row, actor="client", action="submission.initiated")
        if stage != Stage.UPLOADING:
            Event.objects.create(submission=row, actor="client", action="submission.completed")
            Event.objects.create(submission=row, actor="relay", action="submission.queued")
        if stage == Stage.FAILED:
            OutboxMessage.objects.create(
                dedup_key=f"status:{row.tracking_id}",
                topic=OutboxMessage.Topic.STATUS,
                submission=row,
                body={},
                status=OutboxMessage.Status.FAILED,
                last_error="queue unreachable",
            )
        made.append(row)
    return made


def client_as(role: str, tenant: Tenant) -> Client:
    return superuser_client() if role == "superuser" else staff_client(tenant, role)


def queries_of(client: Client, path: str, assert_max_num_queries: Any, limit: int) -> int:
    with assert_max_num_queries(limit) as captured:
        response = client.get(path)
        assert response.status_code == 200, response.content[:500]
    return len(captured)


@pytest.mark.parametrize("role", ["superuser", Membership.Role.OPERATOR, Membership.Role.VIEWER])
def test_changelist_costs_the_same_queries_for_5_and_50_submissions(
    tenant: Tenant, other_tenant: Tenant, role: str, django_assert_max_num_queries: Any
) -> None:
    client = client_as(role, tenant)
    submissions(other_tenant, 5)
    submissions(tenant, 5)
    client.get("/admin/uploads/submission/")  # warm-up: session, content types
    few = queries_of(client, "/admin/uploads/submission/", django_assert_max_num_queries, MAX_CHANGELIST_QUERIES)

    submissions(tenant, 45)
    page = client.get("/admin/uploads/submission/")
    assert page.content.decode().count('class="stage-badge') >= 50  # all 50 rows on the page
    many = queries_of(client, "/admin/uploads/submission/", django_assert_max_num_queries, MAX_CHANGELIST_QUERIES)
    assert few == many


def test_export_costs_the_same_queries_for_5_and_50_submissions(
    tenant: Tenant, other_tenant: Tenant, django_assert_max_num_queries: Any
) -> None:
    client = staff_client(tenant, Membership.Role.VIEWER)
    submissions(other_tenant, 5)
    submissions(tenant, 5)

    def export() -> int:
        with django_assert_max_num_queries(MAX_CHANGELIST_QUERIES) as captured:
            response = client.get("/admin/uploads/submission/export.csv")
            lines = response.getvalue().decode().splitlines()
        assert len(lines) == 1 + Submission.objects.filter(tenant=tenant).count()
        return len(captured)

    export()  # warm-up
    few = export()
    submissions(tenant, 45)
    assert export() == few


@pytest.mark.parametrize("role", ["superuser", Membership.Role.OPERATOR, Membership.Role.VIEWER])
def test_submission_page_costs_the_same_queries_for_20_and_2000_recorded_parts(
    tenant: Tenant, other_tenant: Tenant, role: str, django_assert_max_num_queries: Any
) -> None:
    client = client_as(role, tenant)
    submissions(other_tenant, 2)
    row = submissions(tenant, 1)[0]  # uploading: its audio is a pending multipart upload
    audio = row.media.get(kind=MediaKind.AUDIO)
    MediaUpload.objects.filter(pk=audio.pk).update(part_count=2000, declared_size=2000 * PART)
    UploadPart.objects.filter(media=audio).delete()
    record_parts(audio, 1, 20)
    path = f"/admin/uploads/submission/{row.pk}/change/"
    client.get(path)  # warm-up
    few = queries_of(client, path, django_assert_max_num_queries, MAX_SUBMISSION_PAGE_QUERIES)

    record_parts(audio, 21, 2000)
    page = client.get(path).content.decode()
    assert "page 1 of 20" in page  # the part table is paged, 100 a page
    many = queries_of(client, path, django_assert_max_num_queries, MAX_SUBMISSION_PAGE_QUERIES)
    assert few == many
    last_page = queries_of(
        client, f"{path}?parts_{audio.media_id}=20", django_assert_max_num_queries, MAX_SUBMISSION_PAGE_QUERIES
    )
    assert last_page == many


@pytest.mark.parametrize("role", ["superuser", Membership.Role.OPERATOR])
def test_dashboard_costs_the_same_queries_for_3_and_30_submissions_and_fewer_when_cached(
    tenant: Tenant, other_tenant: Tenant, role: str, django_assert_max_num_queries: Any
) -> None:
    client = client_as(role, tenant)
    submissions(other_tenant, 3)
    submissions(tenant, 3)
    client.get("/admin/")  # warm-up
    cache.clear()
    few = queries_of(client, "/admin/", django_assert_max_num_queries, MAX_DASHBOARD_QUERIES)
    cached = queries_of(client, "/admin/", django_assert_max_num_queries, MAX_DASHBOARD_QUERIES)
    assert cached < few

    submissions(tenant, 27)
    cache.clear()
    many = queries_of(client, "/admin/", django_assert_max_num_queries, MAX_DASHBOARD_QUERIES)
    assert few == many
    assert queries_of(client, "/admin/", django_assert_max_num_queries, MAX_DASHBOARD_QUERIES) == cached
