"""Stock Uppy 6 (`@uppy/core` + `@uppy/aws-s3` with `companionEndpoint: '/uppy'`, the npm
bundle, no code of ours in between) uploads into the portal in Chromium, on the local backend
and on S3 (a moto server whose CORS rule `s3_setup_bucket` wrote): a small file by form POST, a
120 MiB file by multipart, both byte-identical at storage; forged keys and other sessions'
uploads are refused."""

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from moto.s3.responses import S3Response
from playwright.sync_api import Page

from portal import urls as portal_urls
from portal.csp import csp_exempt
from tenants.models import Tenant
from tests.browser.conftest import MIB, MakeFile, RequestLog, ServerBucket, sign_in
from tests.conftest import REGION
from tests.helpers import object_bytes
from tests.uppy_client import created, staff_client
from uploads.models import MediaStatus, MediaUpload
from uploads.storage.s3 import setup_bucket

pytestmark = pytest.mark.browser

UPPY_BUNDLE = Path(__file__).resolve().parent / "node_modules" / "uppy" / "dist" / "uppy.min.mjs"
BIG = 120 * MIB  # above Uppy's 100 MiB multipart threshold: 24 parts of Uppy's own 5 MiB
SMALL = 300 * 1024
UPLOAD_TIMEOUT_MS = 180_000

# The whole integration a site needs: the page below is what the README shows.
UPPY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Uppy into the portal</title></head>
<body>
<input type="file" id="files" multiple>
<script type="module">
  import { Uppy, AwsS3 } from '/uppy-test/uppy.min.mjs'
  const uppy = new Uppy().use(AwsS3, { companionEndpoint: '/uppy' })
  window.uppy = uppy
  // What the test asks of the page: add files with metadata, upload, report each file's outcome.
  window.send = async (meta) => {
    for (const file of document.getElementById('files').files) {
      uppy.addFile({ name: file.name, type: file.type, data: file, meta })
    }
    const started = performance.now()
    const result = await uppy.upload()
    const seconds = (performance.now() - started) / 1000
    uppy.clear()
    return {
      seconds,
      successful: result.successful.map((f) => ({ name: f.name, key: f.response.body.key, url: f.response.uploadURL })),
      failed: result.failed.map((f) => ({ name: f.name, error: String(f.error) })),
    }
  }
  document.documentElement.dataset.uppyReady = 'yes'
</script>
</body></html>"""


@csp_exempt  # another site's page, with its own inline script: not under the portal's policy
def uppy_test_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(UPPY_PAGE, content_type="text/html")


def uppy_bundle(request: HttpRequest) -> FileResponse:
    return FileResponse(UPPY_BUNDLE.open("rb"), content_type="text/javascript")


# The live server serves the page itself, from loopback like the API (tests set ROOT_URLCONF to
# this module): a page Playwright fulfilled would have no address space, and Chromium's Local
# Network Access checks would then block its PUTs to the moto server on loopback.
urlpatterns = [
    path("uppy-test/", uppy_test_page),
    path("uppy-test/uppy.min.mjs", uppy_bundle),
    *portal_urls.urlpatterns,
]
handler404 = portal_urls.handler404


@pytest.fixture(autouse=True)
def serve_uppy_page(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


def open_uppy_page(page: Page, server: str) -> Page:
    page.goto(f"{server}/uppy-test/")
    page.wait_for_selector("html[data-uppy-ready]", state="attached")
    return page


def send(page: Page, files: list[Path], **meta: str) -> dict[str, Any]:
    page.set_input_files("#files", [str(f) for f in files])
    result: dict[str, Any] = page.evaluate("(meta) => window.send(meta)", meta)
    return result


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def uppy_page(page: Page, staff_user: User, server: str) -> Page:
    page.set_default_timeout(UPLOAD_TIMEOUT_MS)
    sign_in(page.context, staff_user, server)
    return open_uppy_page(page, server)


@pytest.fixture
def moto_cors(bucket: ServerBucket, server: str, monkeypatch: pytest.MonkeyPatch) -> ServerBucket:
    """The bucket with the portal's own CORS rule (s3_setup_bucket's function) for the page's
    origin. moto's server (in this process) applies the rule to its answers to PUTs but not to
    a form POST's, as S3 does; this teaches it to, with its own evaluation of the rule."""
    setup_bucket(bucket=bucket.name, region=REGION, origins=[server])
    original = S3Response._bucket_response_post

    def post_with_cors(self: S3Response, request: Any, bucket_name: str) -> Any:
        status, headers, body = original(self, request, bucket_name)
        return status, {**headers, **self._get_cors_headers_other()}, body

    monkeypatch.setattr(S3Response, "_bucket_response_post", post_with_cors)
    return bucket


def assert_small_and_big_upload(
    page: Page, make_file: MakeFile, stored: Any, request_log: RequestLog, tenant: Tenant
) -> dict[str, float]:
    photo = make_file("product.jpg", SMALL, seed=1, head=b"\xff\xd8\xff\xe0")
    audio = make_file("description.ogg", BIG, seed=2, head=b"OggS")

    first = send(page, [photo], artisanId="art_1")
    assert first["failed"] == [], first
    [posted] = first["successful"]
    photo_key = posted["key"]
    tracking_id = photo_key.split("/")[2]
    assert photo_key.startswith(f"tenant_a/art_1/{tracking_id}/med_") and photo_key.endswith(".jpg")

    second = send(page, [audio], artisanId="art_1", trackingId=tracking_id)
    assert second["failed"] == [], second
    [multipart] = second["successful"]
    audio_key = multipart["key"]
    assert audio_key.startswith(f"tenant_a/art_1/{tracking_id}/") and audio_key.endswith(".ogg")

    media = MediaUpload.objects.get(object_key=audio_key)
    assert (media.status, media.size, media.part_count, media.part_size) == (MediaStatus.UPLOADED, BIG, 24, 5 * MIB)
    assert len(request_log.of("GET", r"/uppy/s3/multipart/[^/]+/\d+\?key=")) == 24
    assert len(request_log.of("POST", r"/uppy/s3/params|/storage/post/|/raw-media-")) >= 1

    # The page completes the submission with the v1 API, in the same session.
    client = Client()
    client.force_login(User.objects.get(username="operator"))
    body = {"trackingId": tracking_id, "photoKey": photo_key, "audioKey": audio_key, "language": "hi"}
    accepted = client.post("/v1/catalog/upload/complete", body, content_type="application/json")
    assert accepted.status_code == 202, accepted.content

    assert sha256(stored(photo_key)) == sha256(photo.read_bytes())
    assert sha256(stored(audio_key)) == sha256(audio.read_bytes())
    return {"small_s": first["seconds"], "big_s": second["seconds"]}


def test_stock_uppy_uploads_a_small_and_a_120_mib_file_to_local_storage(
    uppy_page: Page, make_file: MakeFile, request_log: RequestLog, tenant: Tenant, page_errors: list[str]
) -> None:
    started = time.monotonic()
    timings = assert_small_and_big_upload(uppy_page, make_file, object_bytes, request_log, tenant)
    print(f"\nUppy on the local backend: {timings} (whole test body {time.monotonic() - started:.1f} s)")
    assert page_errors == []


def test_stock_uppy_uploads_a_small_and_a_120_mib_file_to_s3(
    moto_cors: ServerBucket,
    uppy_page: Page,
    make_file: MakeFile,
    request_log: RequestLog,
    tenant: Tenant,
    page_errors: list[str],
) -> None:
    timings = assert_small_and_big_upload(uppy_page, make_file, moto_cors.object_bytes, request_log, tenant)
    puts = [r for r in request_log.requests if r.method == "PUT"]
    assert len(puts) == 24 and all(r.url.startswith(moto_cors.endpoint) for r in puts)
    print(f"\nUppy on S3 (moto server): {timings}")
    assert page_errors == []


def test_stock_uppy_cannot_resume_into_another_sessions_upload_or_a_forged_key(
    uppy_page: Page, other_tenant: Tenant, tenant: Tenant, make_file: MakeFile
) -> None:
    """Uppy resumes a file from the (uploadId, key) in its state (what Golden Retriever keeps
    across reloads): pointing it at another tenant's upload, or at one of our own uploads with
    another key, gets a 404 and no byte moves."""
    theirs = created(staff_client(other_tenant, username="other-operator"))
    mine = created(staff_client(tenant, username="second-operator"))
    photo = make_file("product.jpg", SMALL, seed=3, head=b"\xff\xd8\xff\xe0")
    uppy_page.set_input_files("#files", [str(photo)])
    for state in (theirs, {"uploadId": mine["uploadId"], "key": mine["key"].replace(".ogg", ".jpg")}):
        outcome = uppy_page.evaluate(
            """async (state) => {
                const [file] = document.getElementById('files').files
                const id = uppy.addFile({ name: file.name, type: file.type, data: file, meta: { artisanId: 'art_1' } })
                uppy.setFileState(id, { s3Multipart: state })
                const result = await uppy.upload()
                uppy.clear()
                return result.failed.map((f) => String(f.error))
            }""",
            state,
        )
        assert len(outcome) == 1 and "Companion request failed" in outcome[0], outcome
    raw = uppy_page.evaluate(
        """async (state) => {
            const r = await fetch(`/uppy/s3/multipart/${state.uploadId}/1?key=${encodeURIComponent(state.key)}`)
            return { status: r.status, body: await r.json() }
        }""",
        theirs,
    )
    assert raw["status"] == 404 and raw["body"]["error"]["code"] == "not_found"
    for key in (theirs["key"], mine["key"]):
        assert MediaUpload.objects.get(object_key=key).status == MediaStatus.PENDING
