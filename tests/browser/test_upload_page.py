"""The upload page in Chromium: it sends a photo and a description to storage (local or S3) the
way the server plans, survives reloads, expired URLs, failing PUTs and lost networks, pauses and
cancels, and is usable on a phone and by a screen reader."""

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Page, Request, Route, expect

from tenants.models import ApiKey, Membership, Tenant
from tests.browser.conftest import (
    MIB,
    MakeFile,
    NewContext,
    RequestLog,
    ServerBucket,
    axe_violations,
    open_upload_link,
    open_upload_page,
    sign_in,
)
from tests.conftest import client_for
from tests.helpers import initiate
from uploads.models import MediaKind, MediaStatus, MediaUpload
from uploads.services.closing import media_abort

pytestmark = pytest.mark.browser

PHOTO_SIZE = 40 * MIB  # 40 parts of 1 MiB (conftest's part settings)
SMALL_PHOTO_SIZE = 12 * MIB  # 12 parts: enough for the failure tests, and quicker
AUDIO_SIZE = 300_000  # below the 8 MiB threshold: one PUT
JPEG = b"\xff\xd8\xff\xe0"
OGG = b"OggS"
STORAGE_PUT = "**/storage/put/**"  # the local backend's signed URLs
UPLOAD_TIMEOUT_MS = 60_000


# --- driving the page ------------------------------------------------------------------------
def start_for_artisan(page: Page, artisan_id: str = "art_1") -> None:
    page.fill("#artisan", artisan_id)
    page.press("#artisan", "Tab")  # `change` fires when the field is left


def choose_photo(page: Page, path: Path) -> None:
    page.set_input_files("#photo-file", path)


def choose_audio(page: Page, path: Path) -> None:
    page.set_input_files("#audio-file", path)


def expect_uploaded(page: Page, kind: str) -> None:
    expect(page.locator(f"#{kind}-card")).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)


def send(page: Page, language: str = "hi") -> None:
    page.select_option("#language", language)
    page.click("#send")


def expect_stage(page: Page, stage: str) -> None:
    expect(page.locator("#result")).to_have_attribute("data-stage", stage, timeout=UPLOAD_TIMEOUT_MS)


def media(kind: str) -> MediaUpload:
    return MediaUpload.objects.select_related("submission").get(kind=kind, status=MediaStatus.UPLOADED)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_object(key: str) -> bytes:
    return (Path(settings.UPLOADS_LOCAL_ROOT) / "objects" / key).read_bytes()


# --- which part each storage PUT carried -----------------------------------------------------
class PartLedger:
    """URL -> part number of every part URL the server signed for the page (the parts endpoint
    and the resume view), read as each answer arrives (a reload discards response bodies)."""

    def __init__(self, page: Page) -> None:
        self.urls: dict[str, int] = {}
        page.on("requestfinished", self._record)

    def _record(self, request: Request) -> None:
        signing = request.method == "POST" and request.url.endswith("/parts")
        if "/v1/catalog/uploads/med_" not in request.url or not (signing or request.method == "GET"):
            return
        response = request.response()
        if response is None or response.status != 200:
            return
        body = response.json()
        if not signing and body["strategy"] != "multipart":
            return  # a single PUT's fresh URL: not a part
        for part in body["parts"] if signing else body["pendingPartUrls"]:
            self.urls[part["url"]] = part["partNumber"]

    def part_puts(self, log: RequestLog) -> list[tuple[int, Request]]:
        """The multipart PUTs in the log, in order, with their part numbers."""
        return [(self.urls[r.url], r) for r in log.storage_puts() if r.url in self.urls]


@pytest.fixture
def ledger(page: Page) -> PartLedger:
    return PartLedger(page)


def signed_numbers(request: Request) -> list[int]:
    numbers: list[int] = json.loads(request.post_data or "{}")["partNumbers"]
    return numbers


class Gate:
    """Routes storage PUTs: lets the first `allow` through, then holds the rest unanswered (as
    a stalled network would) until released."""

    def __init__(self, page: Page, allow: int, pattern: str = STORAGE_PUT) -> None:
        self.page, self.allow, self.pattern = page, allow, pattern
        self.passed: list[Request] = []
        self.finished: list[Request] = []
        self.held: list[Route] = []
        page.on("requestfinished", lambda r: self.finished.append(r) if r in self.passed else None)
        page.route(pattern, self._handle)

    def _handle(self, route: Route) -> None:
        if len(self.passed) < self.allow:
            self.passed.append(route.request)
            route.continue_()
        else:
            self.held.append(route)

    def wait(self, *, finished: int, held: int) -> None:
        deadline = time.monotonic() + UPLOAD_TIMEOUT_MS / 1000
        while len(self.finished) < finished or len(self.held) < held:
            assert time.monotonic() < deadline, (len(self.finished), len(self.held))
            self.page.wait_for_timeout(20)

    def release(self) -> None:
        """Sends the held requests on, and every later one."""
        self.open()
        held, self.held = self.held, []
        for route in held:
            route.continue_()

    def open(self) -> None:
        """Lets every later request through. Held ones stay unanswered: unrouting would let
        them go on, and a test holds them to see what a page does that never got answers."""
        self.allow = 1_000_000


# --- uploads reach storage intact ------------------------------------------------------------
def send_product(page: Page, make_file: MakeFile) -> tuple[Path, Path, float]:
    """A 40 MiB photo and an audio file chosen, uploaded and sent, as a person does it; returns
    the two files and the seconds the photo took."""
    photo = make_file("product.jpg", PHOTO_SIZE, head=JPEG)
    audio = make_file("description.ogg", AUDIO_SIZE, seed=2, head=OGG)
    start_for_artisan(page)
    started = time.monotonic()
    choose_photo(page, photo)
    choose_audio(page, audio)
    expect_uploaded(page, "photo")
    seconds = time.monotonic() - started
    expect_uploaded(page, "audio")
    send(page)
    expect_stage(page, "queued")
    return photo, audio, seconds


def test_page_uploads_photo_and_audio_to_local_storage_byte_identical(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger, page_errors: list[str]
) -> None:
    page = staff_page
    photo, audio, seconds = send_product(page, make_file)

    photo_media, audio_media = media(MediaKind.PHOTO), media(MediaKind.AUDIO)
    assert photo_media.submission_id == audio_media.submission_id  # one trackingId for both
    assert (photo_media.strategy, photo_media.part_count) == ("multipart", 40)
    assert audio_media.strategy == "single"
    assert sha256(local_object(photo_media.object_key)) == sha256(photo.read_bytes())
    assert sha256(local_object(audio_media.object_key)) == sha256(audio.read_bytes())
    assert sorted(n for n, _ in ledger.part_puts(request_log)) == list(range(1, 41))  # each part once
    assert len(request_log.part_signings()) == 2  # signed in batches of 20, on demand
    assert page.locator("#tracking-id").text_content() == photo_media.submission.tracking_id
    assert not page_errors
    print(f"\n40 MiB photo to local storage: {seconds:.2f} s, {PHOTO_SIZE / seconds / 1e6:.1f} MB/s")


def test_page_uploads_photo_and_audio_to_s3_byte_identical(
    s3_bucket: ServerBucket, staff_page: Page, make_file: MakeFile, request_log: RequestLog, page_errors: list[str]
) -> None:
    page = staff_page
    photo, audio, seconds = send_product(page, make_file)

    photo_media, audio_media = media(MediaKind.PHOTO), media(MediaKind.AUDIO)
    assert sha256(s3_bucket.object_bytes(photo_media.object_key)) == sha256(photo.read_bytes())
    assert sha256(s3_bucket.object_bytes(audio_media.object_key)) == sha256(audio.read_bytes())
    # The bytes went straight to the bucket, across origins (CORS), never through the portal.
    puts = request_log.storage_puts()
    assert len(puts) == 41 and all(p.url.startswith(s3_bucket.endpoint) for p in puts)
    assert not page_errors
    print(f"\n40 MiB photo to S3 (moto server): {seconds:.2f} s, {PHOTO_SIZE / seconds / 1e6:.1f} MB/s")


# --- resuming --------------------------------------------------------------------------------
def reload_mid_upload(page: Page, gate: "Gate", *, finished: int) -> None:
    """Reloads the page once `finished` parts are stored and 4 more are in flight (held by the
    gate, so they never complete): a crash or a closed tab, as storage sees it."""
    gate.wait(finished=finished, held=4)
    page.reload()
    page.wait_for_selector("html[data-upload-ready]", state="attached")


def test_reload_mid_upload_then_same_file_sends_only_missing_parts(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger
) -> None:
    page = staff_page
    photo = make_file("product.jpg", PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    gate = Gate(page, allow=10)
    choose_photo(page, photo)
    reload_mid_upload(page, gate, finished=10)  # 10 parts stored, 4 more in flight (held)
    first_load = ledger.part_puts(request_log)
    request_log.clear()
    gate.open()
    start_for_artisan(page)
    choose_photo(page, photo)
    expect_uploaded(page, "photo")
    second_load = ledger.part_puts(request_log)

    stored_first = {n for n, r in first_load if r in gate.finished}
    assert len(first_load) == 14 and len(stored_first) == 10
    assert sorted(n for n, _ in second_load) == sorted(set(range(1, 41)) - stored_first)
    assert len(first_load) + len(second_load) == 40 + 4  # every part once, plus the 4 cut off
    photo_media = media(MediaKind.PHOTO)
    assert sha256(local_object(photo_media.object_key)) == sha256(photo.read_bytes())


def test_a_file_of_another_size_starts_over(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger
) -> None:
    page = staff_page
    start_for_artisan(page)
    gate = Gate(page, allow=3)
    choose_photo(page, make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG))
    reload_mid_upload(page, gate, finished=3)
    request_log.clear()
    gate.open()
    # Same name, another size: another file, not a resume.
    other = make_file("product.jpg", SMALL_PHOTO_SIZE + 1, seed=9, head=JPEG)
    start_for_artisan(page)
    choose_photo(page, other)
    expect_uploaded(page, "photo")
    assert len(ledger.part_puts(request_log)) == 13
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(other.read_bytes())


def test_a_remembered_upload_aborted_since_starts_over(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger
) -> None:
    page = staff_page
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    gate = Gate(page, allow=3)
    choose_photo(page, photo)
    reload_mid_upload(page, gate, finished=3)
    request_log.clear()
    gate.open()
    gone = MediaUpload.objects.get(kind=MediaKind.PHOTO)
    media_abort(media=gone, actor="test")  # as the expiry sweep or another tab would

    start_for_artisan(page)
    choose_photo(page, photo)
    expect_uploaded(page, "photo")
    assert sorted(n for n, _ in ledger.part_puts(request_log)) == list(range(1, 13))  # all of it, afresh
    fresh = media(MediaKind.PHOTO)
    assert fresh.media_id != gone.media_id
    assert sha256(local_object(fresh.object_key)) == sha256(photo.read_bytes())


# --- failures the page rides out --------------------------------------------------------------
def error_json(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": {}}})


def test_expired_urls_are_signed_again_and_the_uploads_finish(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger
) -> None:
    page = staff_page
    refused: dict[str, Request] = {}  # the first PUT of a part and of a single upload

    def expire_first(route: Route) -> None:
        kind = "single" if route.request.headers.get("if-none-match") == "*" else "part"
        if kind in refused:
            route.continue_()
            return
        refused[kind] = route.request  # answered as the local backend answers an expired URL
        route.fulfill(status=403, content_type="application/json", body=error_json("url_expired", "URL expired."))

    page.route(STORAGE_PUT, expire_first)
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    audio = make_file("description.ogg", AUDIO_SIZE, seed=2, head=OGG)
    start_for_artisan(page)
    choose_photo(page, photo)
    choose_audio(page, audio)
    expect_uploaded(page, "photo")
    expect_uploaded(page, "audio")

    # The part: signed again through the parts endpoint, sent again, and every part once besides.
    expired = ledger.urls[refused["part"].url]
    later = request_log.requests[request_log.requests.index(refused["part"]) + 1 :]
    assert any(r in later and signed_numbers(r)[0] == expired for r in request_log.part_signings())
    assert sorted(n for n, _ in ledger.part_puts(request_log)) == sorted([*range(1, 13), expired])
    # The single PUT: a fresh URL from the upload's resume view.
    later = request_log.requests[request_log.requests.index(refused["single"]) + 1 :]
    assert any(r.method == "GET" and r.url.endswith("?urls=1") for r in later)
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(photo.read_bytes())
    assert sha256(local_object(media(MediaKind.AUDIO).object_key)) == sha256(audio.read_bytes())


def test_failing_part_puts_are_retried_until_they_succeed(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog, ledger: PartLedger
) -> None:
    page = staff_page
    failed: list[Request] = []

    def flaky(route: Route) -> None:
        if len(failed) >= 5:
            route.continue_()
            return
        failed.append(route.request)
        if len(failed) <= 3:  # storage has a bad moment...
            route.fulfill(status=500, content_type="application/json", body=error_json("internal", "Boom."))
        else:  # ...then the connection drops
            route.abort("connectionreset")

    page.route(STORAGE_PUT, flaky)
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    choose_photo(page, photo)
    expect_uploaded(page, "photo")

    puts = ledger.part_puts(request_log)
    failed_parts = [ledger.urls[r.url] for r in failed]
    assert len(puts) == 12 + 5
    for number in failed_parts:  # each failed part was sent again and made it
        assert any(n == number and r not in failed for n, r in puts)
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(photo.read_bytes())


def test_going_offline_and_back_resumes_by_itself(
    staff_page: Page, make_file: MakeFile, screenshot: Callable[[Page, str], Path]
) -> None:
    page = staff_page
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    gate = Gate(page, allow=4)
    choose_photo(page, photo)
    gate.wait(finished=4, held=4)

    page.context.set_offline(True)
    for route in gate.held:  # what the parts in flight meet when the network goes
        route.abort("internetdisconnected")
    expect(page.locator("#announce")).to_contain_text("No network — retrying in")
    expect(page.locator("#network")).to_contain_text(re.compile(r"No network — retrying in \d+ s"))
    expect(page.locator("#photo-card")).to_have_attribute("data-state", "retrying")
    screenshot(page, "upload-desktop-offline")

    gate.open()
    page.context.set_offline(False)
    expect_uploaded(page, "photo")
    expect(page.locator("#network")).to_be_hidden()
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(photo.read_bytes())


def test_storage_that_keeps_refusing_fails_the_upload_plainly_and_try_again_finishes_it(
    staff_phone_page: Page, make_file: MakeFile, screenshot: Callable[[Page, str], Path]
) -> None:
    """Not every failure can be waited out: storage refusing the URL twice in a row (a clock
    far off, a bucket policy) stops the upload with a message and a Try again button."""
    page = staff_phone_page
    refusing = {"on": True}

    def refuse(route: Route) -> None:
        if refusing["on"]:
            route.fulfill(status=403, content_type="application/json", body=error_json("url_invalid", "Refused."))
        else:
            route.continue_()

    page.route(STORAGE_PUT, refuse)
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    choose_photo(page, photo)
    card = page.locator("#photo-card")
    expect(card).to_have_attribute("data-state", "failed")
    expect(page.get_by_role("alert")).to_contain_text("Storage refused this photo. Press Try again")
    retry = card.locator("[data-action=retry]")
    expect(retry).to_be_visible()
    screenshot(page, "upload-phone-failed")
    assert not axe_violations(page)

    refusing["on"] = False
    retry.click()
    expect_uploaded(page, "photo")
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(photo.read_bytes())


# --- pause, resume, cancel --------------------------------------------------------------------
def test_pause_stops_sending_and_resume_finishes(
    staff_page: Page, make_file: MakeFile, request_log: RequestLog
) -> None:
    page = staff_page
    photo = make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG)
    start_for_artisan(page)
    gate = Gate(page, allow=3)
    choose_photo(page, photo)
    gate.wait(finished=3, held=4)

    page.click("#photo-card [data-action=pause]")
    card = page.locator("#photo-card")
    expect(card).to_have_attribute("data-state", "paused")
    expect(page.locator("#photo-text")).to_contain_text("Paused — ")
    puts_when_paused = len(request_log.storage_puts())
    page.wait_for_timeout(600)
    assert len(request_log.storage_puts()) == puts_when_paused  # nothing goes out while paused

    gate.open()
    page.focus("#photo-card [data-action=resume]")  # by keyboard, as anyone may
    page.keyboard.press("Enter")
    expect_uploaded(page, "photo")
    assert sha256(local_object(media(MediaKind.PHOTO).object_key)) == sha256(photo.read_bytes())


def test_cancel_aborts_the_upload_at_the_server(staff_page: Page, make_file: MakeFile) -> None:
    page = staff_page
    start_for_artisan(page)
    gate = Gate(page, allow=2)
    choose_photo(page, make_file("product.jpg", SMALL_PHOTO_SIZE, head=JPEG))
    gate.wait(finished=2, held=4)

    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click("#photo-card [data-action=cancel]")
    assert deleted.value.status == 200
    expect(page.locator("#photo-card")).to_have_attribute("data-state", "cancelled")
    assert MediaUpload.objects.get(kind=MediaKind.PHOTO).status == MediaStatus.ABORTED
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('catalog-upload:')).length") == 0


# --- how it looks, and who can use it -------------------------------------------------------------
DRAW_PRODUCT = """() => {
  // A terracotta pot on a table, drawn and encoded by the browser itself.
  const canvas = Object.assign(document.createElement("canvas"), { width: 480, height: 360 });
  const g = canvas.getContext("2d");
  const wall = g.createLinearGradient(0, 0, 0, 360);
  wall.addColorStop(0, "#efe6d8");
  wall.addColorStop(1, "#d9c7ad");
  g.fillStyle = wall;
  g.fillRect(0, 0, 480, 360);
  g.fillStyle = "#8a6a4a";
  g.fillRect(0, 290, 480, 70);
  g.fillStyle = "#b5562d";
  g.beginPath();
  g.moveTo(160, 110); g.lineTo(320, 110); g.lineTo(290, 300); g.lineTo(190, 300); g.closePath();
  g.fill();
  g.fillStyle = "#9c4524";
  g.fillRect(148, 92, 184, 28);
  g.strokeStyle = "#f3d9a4";
  g.lineWidth = 6;
  for (const y of [160, 200, 240]) { g.beginPath(); g.moveTo(175, y); g.lineTo(305, y); g.stroke(); }
  return canvas.toDataURL("image/jpeg", 0.9);
}"""


def assert_fits_width(page: Page) -> None:
    """Nothing sticks out sideways: no horizontal scrolling, on a phone least of all."""
    width = (page.viewport_size or {"width": 0})["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def real_jpeg(page: Page) -> bytes:
    """A small real JPEG to head a test photo, so the page can show a preview: decoders stop at
    its end marker and ignore the padding after it."""
    data_url: str = page.evaluate(DRAW_PRODUCT)
    return base64.b64decode(data_url.split(",", 1)[1])


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_page_idle_uploading_finished_screenshots_and_no_serious_axe_violations(
    device: str,
    new_context: NewContext,
    staff_user: User,
    tenant: Tenant,
    server: str,
    make_file: MakeFile,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Desktop: a staff operator uploading for an artisan; phone: the artisan, through a link.
    page = new_context(phone=device == "phone").new_page()
    if device == "phone":
        open_upload_link(page, tenant)
    else:
        sign_in(page.context, staff_user, server)
        open_upload_page(page)
        start_for_artisan(page)
    assert axe_violations(page) == []
    assert_fits_width(page)
    screenshot(page, f"upload-{device}-idle")

    gate = Gate(page, allow=15)
    choose_photo(page, make_file("product.jpg", PHOTO_SIZE, head=real_jpeg(page)))
    choose_audio(page, make_file("description.ogg", AUDIO_SIZE, seed=2, head=OGG))
    gate.wait(finished=15, held=4)
    expect_uploaded(page, "audio")
    page.select_option("#language", "hi")
    assert page.locator("#photo-progress").evaluate("p => p.value") > 0.3
    assert_fits_width(page)
    screenshot(page, f"upload-{device}-uploading")

    gate.release()
    page.click("#send")
    expect_stage(page, "queued")
    assert axe_violations(page) == []
    screenshot(page, f"upload-{device}-finished")


def test_upload_link_session_sends_for_its_artisan_only(page: Page, tenant: Tenant, make_file: MakeFile) -> None:
    other = initiate(client_for(tenant), content_type="image/jpeg", file_size=1000, artisan_id="art_other")
    open_upload_link(page, tenant, artisan_id="art_link")
    expect(page.locator("#scope-label")).to_contain_text("art_link")
    expect(page.locator("#who")).to_be_hidden()  # nothing to type: the link fixes the artisan
    choose_photo(page, make_file("product.jpg", 300_000, head=JPEG))
    choose_audio(page, make_file("description.ogg", AUDIO_SIZE, seed=2, head=OGG))
    send(page, "ta")
    expect_stage(page, "queued")
    assert media(MediaKind.PHOTO).submission.artisan_id == "art_link"

    # The session's own API calls cannot reach another artisan's submission of the same tenant.
    status = page.evaluate("id => fetch('/v1/catalog/status/' + id).then(r => r.status)", other["trackingId"])
    assert status == 404

    # The page keeps watching beyond queued, as the pipeline reports.
    tracking_id = media(MediaKind.PHOTO).submission.tracking_id
    pipeline = client_for(tenant, role=ApiKey.Role.PIPELINE)
    for event in (
        {"eventId": "e1", "stage": "processing"},
        {"eventId": "e2", "stage": "completed", "catalogId": "cat_9"},
    ):
        response = pipeline.post(f"/v1/catalog/status/{tracking_id}/events", event, format="json")
        assert response.status_code == 200, response.content
    expect_stage(page, "completed")
    expect(page.locator("#stage")).to_have_text("In the catalogue")


def test_staff_of_two_tenants_upload_for_the_tenant_they_choose(
    page: Page, staff_user: User, other_tenant: Tenant, server: str, make_file: MakeFile
) -> None:
    Membership.objects.create(user=staff_user, tenant=other_tenant, role=Membership.Role.OPERATOR)
    sign_in(page.context, staff_user, server)
    open_upload_page(page)
    page.select_option("#tenant", "tenant_b")
    start_for_artisan(page, "art_b")
    choose_photo(page, make_file("product.jpg", 300_000, head=JPEG))
    expect_uploaded(page, "photo")
    expect(page.locator("#tenant")).to_be_disabled()  # fixed once a file is on its way
    submission = media(MediaKind.PHOTO).submission
    assert (submission.tenant_id, submission.artisan_id) == ("tenant_b", "art_b")


def test_recording_with_the_microphone_uploads_it(staff_page: Page) -> None:
    page = staff_page  # Chromium's fake microphone plays a steady beep
    start_for_artisan(page)
    page.click("#record")
    expect(page.locator("#recording")).to_be_visible()
    # A function, not an expression: Playwright evals an expression in the page, which the CSP refuses.
    page.wait_for_function("() => parseFloat(document.getElementById('level').style.width) > 0")  # the meter moves
    page.wait_for_timeout(1200)
    page.click("#record")  # now labelled "Stop recording"
    expect_uploaded(page, "audio")
    expect(page.locator("#record")).to_have_text("Record again")
    assert page.locator("#audio-playback").evaluate("a => a.src.startsWith('blob:')")  # can be played back

    recording = MediaUpload.objects.get(kind=MediaKind.AUDIO)
    data = local_object(recording.object_key)
    assert recording.content_type == "audio/webm" and data[:4] == b"\x1a\x45\xdf\xa3"  # a WebM (EBML) file
    assert len(data) > 1000
