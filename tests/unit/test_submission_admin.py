"""The submission list and page as staff use them: find what a ticket names, see where every
byte stands, export what the filters show; only their own tenants, always."""

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Membership, Tenant
from tests.helpers import (
    complete_body,
    create_upload,
    put_part,
    sign_parts,
    staff_client,
    uploaded_submission,
)
from uploads.errors import StorageUnavailable
from uploads.models import MediaUpload, OutboxMessage, Stage, Submission, UploadPart
from uploads.storage import LocalStorage

pytestmark = pytest.mark.django_db

LIST = "/admin/uploads/submission/"


@pytest.fixture
def viewer(tenant: Tenant) -> Client:
    return staff_client(tenant, Membership.Role.VIEWER)


def multipart_with_parts(api: APIClient, numbers: list[int], **create: Any) -> MediaUpload:
    """A multipart upload with `numbers` sent to storage and recorded by the client."""
    created = create_upload(api, **create)
    signed = sign_parts(api, created["mediaId"], numbers)
    for number in numbers:
        data = b"p" * (created["partSize"] if number < created["numParts"] else 10_000)
        put_part(signed[number], data)
        body = {"size": len(data), "etag": f"etag-{number}"}
        assert (
            api.put(f"/v1/catalog/uploads/{created['mediaId']}/parts/{number}", body, format="json").status_code == 200
        )
    return MediaUpload.objects.get(media_id=created["mediaId"])


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_list_shows_each_files_progress_from_the_database(api: APIClient, viewer: Client) -> None:
    media = multipart_with_parts(api, [1, 2])
    html = page(viewer, LIST)
    assert media.submission.tracking_id in html
    assert '<span class="kind">audio</span> 128.0\xa0KB / 265.8\xa0KB · 48%' in html
    assert 'stage-badge stage-uploading">Uploading' in html


def test_stuck_filter_finds_unfinished_submissions_without_recent_progress(
    api: APIClient, viewer: Client, settings: Any
) -> None:
    stuck = multipart_with_parts(api, [1]).submission
    fresh = multipart_with_parts(api, [1]).submission
    done = Submission.objects.get(tracking_id=complete_body(uploaded_submission(api))["trackingId"])
    long_ago = timezone.now() - timedelta(minutes=settings.ADMIN_STUCK_MINUTES + 1)
    Submission.objects.filter(pk__in=[stuck.pk, done.pk]).update(last_progress_at=long_ago)
    Submission.objects.filter(pk=done.pk).update(stage=Stage.COMPLETED)
    html = page(viewer, LIST + "?stuck=yes")
    assert stuck.tracking_id in html
    assert fresh.tracking_id not in html
    assert done.tracking_id not in html  # finished: nothing is waiting on it


def test_recording_a_part_is_progress_that_unsticks_a_submission(api: APIClient, settings: Any) -> None:
    media = multipart_with_parts(api, [1])
    long_ago = timezone.now() - timedelta(hours=3)
    Submission.objects.filter(pk=media.submission_id).update(last_progress_at=long_ago)
    signed = sign_parts(api, media.media_id, [2])
    put_part(signed[2], b"p" * media.part_size)  # type: ignore[operator]
    api.put(f"/v1/catalog/uploads/{media.media_id}/parts/2", {"size": media.part_size, "etag": "e2"}, format="json")
    assert Submission.objects.get(pk=media.submission_id).last_progress_at > long_ago


def test_failed_messages_filter_and_last_error_column(api: APIClient, viewer: Client) -> None:
    failing = multipart_with_parts(api, [1]).submission
    quiet = multipart_with_parts(api, [1]).submission
    OutboxMessage.objects.filter(submission=failing).update(status="failed", last_error="SQS said no: AccessDenied")
    html = page(viewer, LIST + "?failed_messages=yes")
    assert failing.tracking_id in html and quiet.tracking_id not in html
    assert "SQS said no: AccessDenied" in html


@pytest.mark.parametrize("what", ["tracking_id", "media_id", "object_key", "artisan_id"])
def test_search_finds_a_submission_by_what_a_ticket_quotes(api: APIClient, viewer: Client, what: str) -> None:
    media = multipart_with_parts(api, [1], artisan_id="art_wanted")
    other = multipart_with_parts(api, [1], artisan_id="art_other")
    term = {
        "tracking_id": media.submission.tracking_id,
        "media_id": media.media_id,
        "object_key": media.object_key,
        "artisan_id": "art_wanted",
    }[what]
    html = page(viewer, f"{LIST}?q={term}")
    assert media.submission.tracking_id in html
    assert other.submission.tracking_id not in html


def test_search_never_reaches_another_tenants_submission(other_api: APIClient, viewer: Client) -> None:
    theirs = multipart_with_parts(other_api, [1])
    for term in (theirs.submission.tracking_id, theirs.media_id, theirs.object_key):
        html = page(viewer, f"{LIST}?q={term}")
        assert f"{theirs.submission.tracking_id}</a>" not in html  # no result row (the box keeps the term)
        assert "0 submissions" in html


def test_export_streams_the_filtered_list_as_csv(api: APIClient, other_api: APIClient, viewer: Client) -> None:
    uploading = multipart_with_parts(api, [1, 2]).submission
    queued = Submission.objects.get(tracking_id=complete_body(uploaded_submission(api))["trackingId"])
    Submission.objects.filter(pk=queued.pk).update(stage=Stage.QUEUED, stage_message="=HYPERLINK(evil)")
    theirs = multipart_with_parts(other_api, [1]).submission

    response = viewer.get(LIST + "export.csv?stage__exact=uploading")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]
    assert [r["trackingId"] for r in rows] == [uploading.tracking_id]
    assert rows[0]["bytes"] == str(2 * 64 * 1024)

    everything = b"".join(viewer.get(LIST + "export.csv").streaming_content).decode()  # type: ignore[attr-defined]
    assert queued.tracking_id in everything and theirs.tracking_id not in everything
    assert "'=HYPERLINK(evil)" in everything  # a formula stays text in a spreadsheet


def test_the_list_counts_exactly_up_to_a_limit_and_then_says_more_than(
    tenant: Tenant, viewer: Client, settings: Any
) -> None:
    settings.ADMIN_EXACT_COUNT_LIMIT = 3
    Submission.objects.bulk_create([Submission(tenant=tenant, artisan_id="a") for _ in range(5)])
    Submission.objects.bulk_create([Submission(tenant=tenant, artisan_id="b") for _ in range(2)])
    beyond = "about" if connection.vendor == "postgresql" else "more than 3"  # the planner's estimate
    assert re.search(rf"{beyond} \d* ?submissions: narrow them down", page(viewer, LIST))
    assert "2 submissions" in page(viewer, LIST + "?q=b")  # within the limit: exact


def test_submission_page_shows_the_plan_and_marks_missing_parts(api: APIClient, viewer: Client) -> None:
    media = multipart_with_parts(api, [1, 2, 4])
    html = page(viewer, f"{LIST}{media.submission_id}/change/")
    assert "5 parts of 64.0\xa0KB" in html
    assert "Missing against the plan (2): 3, 5" in html
    assert 'class="gap"><td colspan="4">Part 3 not recorded' in html
    assert 'class="gap"><td colspan="4">Part 5 not recorded' in html  # after the last one, on the last page


def test_part_table_is_paged(api: APIClient, viewer: Client) -> None:
    media = multipart_with_parts(api, [1])
    MediaUpload.objects.filter(pk=media.pk).update(part_count=250)
    UploadPart.objects.bulk_create(
        [UploadPart(media=media, part_number=n, size=1, etag=f"e{n}") for n in range(2, 251) if n != 150]
    )
    first = page(viewer, f"{LIST}{media.submission_id}/change/")
    assert "page 1 of 3" in first and "<td>100</td>" in first and "<td>101</td>" not in first
    second = page(viewer, f"{LIST}{media.submission_id}/change/?parts_{media.media_id}=2")
    assert "<td>101</td>" in second and "Part 150 not recorded" in second


def test_storage_view_is_fetched_on_demand_and_marks_differences(api: APIClient, viewer: Client) -> None:
    media = multipart_with_parts(api, [1, 2])
    url = f"{LIST}{media.submission_id}/change/"
    assert "Ask storage now" in page(viewer, url)
    html = page(viewer, f"{url}?storage={media.media_id}")
    assert "difference" in html  # the recorded ETags are the client's words ("etag-1"), not storage's md5


def test_storage_unreachable_is_shown_as_such_never_a_500(
    api: APIClient, viewer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = multipart_with_parts(api, [1])

    def down(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("connection refused")

    monkeypatch.setattr(LocalStorage, "list_parts", down)
    html = page(viewer, f"{LIST}{media.submission_id}/change/?storage={media.media_id}")
    assert "Storage could not be asked" in html


def test_finished_files_have_previews_and_unfinished_ones_do_not(api: APIClient, viewer: Client) -> None:
    finished = uploaded_submission(api)
    assert api.post("/v1/catalog/upload/complete", complete_body(finished)).status_code == 202
    pending = multipart_with_parts(api, [1])
    done_page = page(viewer, f"{LIST}{Submission.objects.get(tracking_id=finished['trackingId']).pk}/change/")
    assert '<img src="http://testserver/storage/get/' in done_page or '<img src="/storage/get/' in done_page
    assert "<audio controls" in done_page
    assert "/storage/get/" not in page(viewer, f"{LIST}{pending.submission_id}/change/")


def test_the_page_shows_the_processing_message_as_sent_and_the_timeline(api: APIClient, viewer: Client) -> None:
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body).status_code == 202
    submission = Submission.objects.get(tracking_id=body["trackingId"])
    html = page(viewer, f"{LIST}{submission.pk}/change/")
    assert "Processing message as sent" in html and "&quot;photoKey&quot;" in html
    for action in ("submission.uploading", "submission.completed", "media.uploaded"):
        assert action in html


def test_viewer_sees_no_action_buttons_operator_does(api: APIClient, tenant: Tenant, viewer: Client) -> None:
    media = multipart_with_parts(api, [1])
    url = f"{LIST}{media.submission_id}/change/"
    assert "/act/" not in page(viewer, url)
    operator = staff_client(tenant, Membership.Role.OPERATOR)
    html = page(operator, url)
    assert f"{media.submission_id}/act/abort/" in html
    assert f"{media.submission_id}/act/reprocess/" not in html  # shown, disabled: it is not failed
