"""Staff triage in Chromium: an operator finds a submission by pasting its tracking id into the
admin index's search box, aborts it with a reason through the confirmation page, and sees the
event and the new stage; a viewer gets no action anywhere; the dashboard, the list and the
submission page are screenshotted (desktop, 1400 px, phone) and checked with axe-core; staff
compare a submission with its DynamoDB mirror."""

import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import FloatRect, Page, ViewportSize, expect
from rest_framework.test import APIClient

from tenants.models import ApiKey, Membership, Tenant
from tenants.services import tenant_create
from tests.browser.conftest import MIB, SCREENSHOTS, NewContext, axe_violations, sign_in
from tests.conftest import Mirror, client_for, put_bytes
from tests.helpers import complete_body, create_upload, initiate, put_part, sign_parts, uploaded_submission
from tests.integration.conftest import ServerBucket
from uploads.dynamodb import create_tables, mirror_tables
from uploads.models import OutboxMessage, Stage, Submission
from uploads.services import outbox_relay

pytestmark = pytest.mark.browser

Screenshot = Callable[[Page, str], Path]
AUDIO_SIZE = 9 * MIB + 300_000  # ten planned parts of 1 MiB (the browser conftest's part size)
RECORDED_PARTS = [1, 2, 3, 5, 6]  # part 4 and parts 7-10 are gaps against the plan
WIDE: ViewportSize = {"width": 1400, "height": 900}


# --- data, made through the API as clients and the pipeline make it ---------------------------
def product_png(width: int = 320, height: int = 240) -> bytes:
    """A small real PNG (a terracotta pot on a table), so the preview has a picture to decode."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        half = 55 + (y - 60) * 25 // 150  # the pot widens towards its base
        for x in range(width):
            dx = abs(x - width // 2)
            if 45 <= y < 60 and dx < 80:
                rows += b"\x9c\x45\x24"  # rim
            elif 60 <= y < 210 and dx < half:
                rows += b"\xf3\xd9\xa4" if y % 40 < 5 else b"\xc4\x62\x3a"  # body with bands
            elif y >= 210:
                rows += b"\x8a\x6a\x4a"  # table
            else:
                rows += b"\xf1\xea\xde"  # wall

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    )


def half_sent(api: APIClient, artisan_id: str = "art_pottery") -> Submission:
    """A ticket's usual suspect: the photo finished (a real PNG), the audio a multipart upload
    with some parts sent and recorded and gaps where the connection dropped."""
    png = product_png()
    photo = initiate(api, content_type="image/png", file_size=len(png), artisan_id=artisan_id)
    assert put_bytes(photo["uploadUrl"], png, photo["headers"]).status_code == 200
    assert api.post(f"/v1/catalog/uploads/{photo['mediaId']}/complete").status_code == 200
    audio = create_upload(
        api, content_type="audio/ogg", file_size=AUDIO_SIZE, tracking_id=photo["trackingId"], artisan_id=artisan_id
    )
    assert (audio["strategy"], audio["numParts"]) == ("multipart", 10), audio
    signed = sign_parts(api, audio["mediaId"], RECORDED_PARTS)
    for number in RECORDED_PARTS:
        sent = put_part(signed[number], bytes([number]) * audio["partSize"])
        recorded = api.put(
            f"/v1/catalog/uploads/{audio['mediaId']}/parts/{number}",
            {"size": audio["partSize"], "etag": sent["ETag"]},
            format="json",
        )
        assert recorded.status_code == 200, recorded.content
    return Submission.objects.get(tracking_id=photo["trackingId"])


def handed_over(api: APIClient) -> str:
    """Both files sent and the submission completed: handed to the pipeline. Returns its tracking id."""
    body = complete_body(uploaded_submission(api))
    assert api.post("/v1/catalog/upload/complete", body, format="json").status_code == 202
    return str(body["trackingId"])


def report(tenant: Tenant, tracking_id: str, **body: Any) -> None:
    response = client_for(tenant, role=ApiKey.Role.PIPELINE).post(
        f"/v1/catalog/status/{tracking_id}/events", body, format="json"
    )
    assert response.status_code == 200, response.content


def just_started(api: APIClient, artisan_id: str = "art_new") -> Submission:
    created = create_upload(api, content_type="image/jpeg", file_size=2 * MIB, artisan_id=artisan_id)
    return Submission.objects.get(tracking_id=created["trackingId"])


def staff(tenants: list[Tenant], role: str, username: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for tenant in tenants:
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def admin_page(new_context: NewContext, user: User, server: str, *, phone: bool = False) -> Page:
    page = new_context(phone=phone).new_page()
    sign_in(page.context, user, server)
    return page


def change_url(submission: Submission) -> str:
    return f"/admin/uploads/submission/{submission.pk}/change/"


def assert_fits_width(page: Page) -> None:
    """Nothing sticks out sideways: the document never scrolls horizontally."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )


# axe-core's findings that Django's admin brings itself, by rule and the only elements allowed:
def assert_thumbnail_shown(page: Page) -> None:
    thumbnail = page.locator("img.thumbnail")
    expect(thumbnail).to_be_visible()
    page.wait_for_function("() => { const i = document.querySelector('img.thumbnail'); return i && i.complete; }")
    assert thumbnail.evaluate("img => img.naturalWidth") == 320  # decoded, through its signed URL


# --- operators act, viewers read ----------------------------------------------------------------
def test_operator_pastes_a_tracking_id_aborts_with_a_reason_and_sees_the_event_and_the_new_stage(
    new_context: NewContext,
    staff_user: User,
    tenant: Tenant,
    other_tenant: Tenant,
    server: str,
    screenshot: Screenshot,
) -> None:
    submission = half_sent(client_for(tenant))
    half_sent(client_for(other_tenant))
    page = admin_page(new_context, staff_user, server)

    page.goto("/admin/")
    page.get_by_role("searchbox").fill(f"  {submission.tracking_id} ")  # as pasted from a ticket
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**{change_url(submission)}")
    expect(page.locator(".stage-line .stage-badge")).to_have_text("Uploading")

    page.get_by_role("link", name="Abort…").click()
    expect(page.locator("table.confirm-rows tbody tr")).to_have_count(1)
    expect(page.locator("table.confirm-rows")).to_contain_text(submission.tracking_id)
    assert axe_violations(page) == []
    screenshot(page, "admin-confirm-abort")
    confirm = page.get_by_role("button", name="Abort: yes, go ahead")
    confirm.click()  # no reason yet: the browser keeps the form, nothing is posted
    assert page.get_by_label("Reason").evaluate("field => field.validity.valueMissing")
    assert Submission.objects.get(pk=submission.pk).stage == Stage.UPLOADING

    page.get_by_label("Reason").fill("Ticket 4711: the artisan sent the wrong product")
    confirm.click()
    page.wait_for_url(f"**{change_url(submission)}")
    expect(page.locator(".messagelist .success")).to_contain_text(f"Submission {submission.tracking_id}: Aborted")
    expect(page.locator(".stage-line .stage-badge")).to_have_text("Aborted")
    event = page.locator("section.timeline tbody tr", has_text="submission.aborted")
    expect(event).to_have_count(1)
    expect(event).to_contain_text("staff:operator")
    expect(event).to_contain_text("Ticket 4711: the artisan sent the wrong product")
    expect(page.locator(".triage-actions").get_by_role("link", name="Abort…")).to_have_count(0)
    screenshot(page, "admin-submission-aborted")


def test_another_tenants_tracking_id_finds_nothing_from_the_search_box(
    new_context: NewContext, staff_user: User, tenant: Tenant, other_tenant: Tenant, server: str
) -> None:
    theirs = just_started(client_for(other_tenant))
    page = admin_page(new_context, staff_user, server)
    page.goto("/admin/")
    page.get_by_role("searchbox").fill(theirs.tracking_id)
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Nothing matches “{theirs.tracking_id}” in your tenants.")
    assert page.url == f"{server}/admin/"


def test_viewer_sees_no_action_buttons_on_the_submission_page_nor_actions_in_the_list(
    new_context: NewContext, tenant: Tenant, other_tenant: Tenant, server: str
) -> None:
    submission = half_sent(client_for(tenant))
    theirs = just_started(client_for(other_tenant))
    viewer = staff([tenant], Membership.Role.VIEWER, "viewer")
    page = admin_page(new_context, viewer, server)

    page.goto("/admin/uploads/submission/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text(submission.tracking_id)
    assert theirs.tracking_id not in page.content()
    expect(page.locator("#changelist-form select[name=action]")).to_have_count(0)
    expect(page.locator("input.action-select")).to_have_count(0)

    page.get_by_role("link", name=submission.tracking_id).click()
    page.wait_for_url(f"**{change_url(submission)}")
    expect(page.locator(".file-panel")).to_have_count(2)  # the page itself is all there
    expect(page.locator(".triage-actions")).to_have_count(0)
    for label in ("Retry processing", "Abort", "Expire now", "Re-send the latest status update"):
        expect(page.get_by_role("link", name=label)).to_have_count(0)

    typed_by_hand = page.goto(f"/admin/uploads/submission/{submission.pk}/act/abort/")
    assert typed_by_hand is not None and typed_by_hand.status == 403
    expect(page.get_by_role("button", name="Abort: yes, go ahead")).to_have_count(0)


# --- how the pages look -------------------------------------------------------------------------
@pytest.fixture
def triage_day(tenant: Tenant, other_tenant: Tenant) -> Submission:
    """A few submissions in several stages across two tenants, one stuck, one failed, one with a
    message that ran out of attempts, and a third tenant nobody here may see. Returns the
    half-sent one, the page's subject."""
    api, other_api = client_for(tenant), client_for(other_tenant)
    subject = half_sent(api)
    stuck = just_started(api, artisan_id="art_weaver")
    Submission.objects.filter(pk=stuck.pk).update(last_progress_at=timezone.now() - timedelta(hours=3))
    report(tenant, handed_over(api), eventId="e-1", stage="processing", message="Transcribing the description.")
    done = handed_over(api)
    report(tenant, done, eventId="e-2", stage="processing")
    report(tenant, done, eventId="e-3", stage="completed", catalogId="cat_9081")
    handed_over(other_api)
    just_started(other_api, artisan_id="art_brass")
    failed = handed_over(other_api)
    report(
        other_tenant,
        failed,
        eventId="e-4",
        stage="failed",
        message="The audio could not be transcribed.",
        errorDetails={"reason": "audio_unreadable", "retryable": False},
    )
    latest_status = OutboxMessage.objects.filter(submission__tracking_id=failed, topic=OutboxMessage.Topic.STATUS)
    OutboxMessage.objects.filter(pk=latest_status.latest("created_at").pk).update(
        status=OutboxMessage.Status.FAILED,
        attempts=8,
        last_error="EndpointConnectionError: Could not connect to the endpoint URL: https://sqs.ap-south-1.amazonaws.com/",
    )
    hidden = tenant_create(tenant_id="tenant_hidden", name="Hidden")
    just_started(client_for(hidden), artisan_id="art_hidden")
    return subject


@pytest.fixture
def two_tenant_operator(tenant: Tenant, other_tenant: Tenant) -> User:
    return staff([tenant, other_tenant], Membership.Role.OPERATOR, "ana")


def test_dashboard_and_submission_list_screenshots_without_serious_axe_violations(
    new_context: NewContext, two_tenant_operator: User, triage_day: Submission, server: str, screenshot: Screenshot
) -> None:
    page = admin_page(new_context, two_tenant_operator, server)
    page.goto("/admin/")
    counts = page.locator("table.triage-counts")
    expect(counts.locator("tbody th[scope=row]")).to_have_text(["tenant_a", "tenant_b"])
    expect(page.locator("#triage-stuck")).to_have_text("Stuck: 1")
    expect(page.locator("#triage-failed")).to_have_text("Failed messages: 1")
    assert "tenant_hidden" not in page.content()
    assert axe_violations(page) == []
    assert_fits_width(page)
    screenshot(page, "admin-dashboard")

    page.goto("/admin/uploads/submission/")
    expect(page.locator("#result_list tbody tr")).to_have_count(7)
    actions = page.locator("#changelist-form select[name=action] option")  # what a viewer must not get
    expect(actions).to_contain_text(["Retry processing", "Abort", "Expire now"])
    assert "tenant_hidden" not in page.content()
    assert axe_violations(page) == []
    assert_fits_width(page)
    screenshot(page, "admin-changelist")


def test_submission_page_screenshots_at_desktop_1400_px_and_phone_widths(
    new_context: NewContext, two_tenant_operator: User, triage_day: Submission, server: str, screenshot: Screenshot
) -> None:
    page = admin_page(new_context, two_tenant_operator, server)
    page.goto(change_url(triage_day))
    expect(page.locator("tr.gap")).to_have_text(["Part 4 not recorded", "Parts 7–10 not recorded"])
    assert_thumbnail_shown(page)
    assert axe_violations(page) == []
    screenshot(page, "admin-submission")

    page.set_viewport_size(WIDE)  # the width staff reported the media table overflowing
    assert_fits_width(page)
    screenshot(page, "admin-submission-1400")

    phone = admin_page(new_context, two_tenant_operator, server, phone=True)
    phone.goto(change_url(triage_day))
    assert_thumbnail_shown(phone)
    assert_fits_width(phone)
    screenshot(phone, "admin-submission-phone")


@pytest.fixture
def server_mirror(bucket: ServerBucket, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Mirror:
    """The mirror on, its tables on the moto server beside the S3 bucket (the files' keys then
    read s3://..., as in production)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", bucket.endpoint)
    settings.DYNAMODB_CATALOG_TABLE = f"CatalogProcessingRecords{uuid4().hex[:8]}"  # the server is shared
    tables = mirror_tables()
    assert tables is not None
    create_tables(tables)
    return Mirror(tables)


def test_the_mirror_panel_marks_what_dynamodb_holds_differently_from_the_database(
    new_context: NewContext, staff_user: User, tenant: Tenant, server: str, server_mirror: Mirror
) -> None:
    """The pipeline has reported into the catalog record, and someone set the audio's item back
    by hand: asked on demand, the panel shows the first as written by others, the second behind."""
    mirror = server_mirror
    submission = Submission.objects.get(tracking_id=handed_over(client_for(tenant)))
    outbox_relay()
    mirror.pipeline_writes(
        submission.tracking_id,
        processingStage="processing",
        processingMessage="Transcribing the description.",
        processingUpdatedAt="2025-03-04T09:30:00.000Z",
    )
    audio = submission.media.get(kind="audio")
    mirror.client.update_item(
        TableName=mirror.tables.upload_state,
        Key={"trackingId": {"S": submission.tracking_id}, "mediaId": {"S": audio.media_id}},
        UpdateExpression="SET #s = :s, #v = :v",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={":s": {"S": "pending"}, ":v": {"N": "1"}},
    )
    page = admin_page(new_context, staff_user, server)
    page.goto(change_url(submission))
    page.get_by_role("link", name="Compare with DynamoDB").click()
    panel = page.locator("#mirror")
    expect(panel.locator(".storage-summary")).to_contain_text("1 of 3 items not in sync with the database")
    expect(panel.locator("details.state-behind tr.differs")).to_have_count(2)  # status and version
    expect(panel.locator(".written-by-others")).to_contain_text("Transcribing the description.")
    assert axe_violations(page) == []
    page.set_viewport_size(WIDE)
    assert_fits_width(page)
    bottom = panel.evaluate("section => section.getBoundingClientRect().bottom + window.scrollY")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    top_to_panel: FloatRect = {"x": 0, "y": 0, "width": WIDE["width"], "height": bottom + 16}
    page.screenshot(path=str(SCREENSHOTS / "admin-mirror.png"), full_page=True, clip=top_to_panel)
