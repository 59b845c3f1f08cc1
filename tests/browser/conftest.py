"""Browser-test fixtures: the live server, Debian's Chromium driven by Playwright, pages signed in
as staff or through an upload link, an S3 (moto server) variant with CORS, and small tools
(test files, a log of requests, screenshots).

Chromium is launched once per session; every test gets fresh contexts (cookies, localStorage,
network conditions), closed when it ends."""

import os

# Playwright's sync API runs an asyncio event loop in the main thread, where the tests run too.
# Django then takes every ORM call of a test for a call from async code and raises
# SynchronousOnlyOperation, although the test is plain synchronous code between Playwright
# steps and no coroutine ever touches the database. Set before Django sees a query; it holds for
# the rest of the pytest process (only a safety check is lifted: no test here runs async code).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import io
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, ViewportSize, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tenants.models import Membership, Tenant
from tests.integration.conftest import ServerBucket, bucket, moto_server  # noqa: F401  (fixtures)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in containers, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fake microphone (a beeping tone) that needs no permission prompt: the recorder is tested
    # with real MediaRecorder and Web Audio code. Unused until a page asks for a microphone.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "artifacts" / "screenshots"
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
MIB = 1024 * 1024
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}
# A generous ceiling for one step (an upload of tens of MiB on a busy 2-core machine), not a sleep.
STEP_TIMEOUT_MS = 30_000


# --- the server ----------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def browser_upload_settings(settings: Any, transactional_db: None) -> None:
    """Part sizes a browser really meets, scaled down: multipart above 8 MiB in 1 MiB parts, so a
    40 MiB photo has 40 parts. The live server runs in this process, so `settings` reaches it.
    `transactional_db` because the server's threads must see what a test commits (the SQLite
    test database is a file, shared by those threads)."""
    settings.UPLOADS_MULTIPART_THRESHOLD = 8 * MIB
    settings.UPLOADS_DEFAULT_PART_SIZE = 1 * MIB
    settings.UPLOADS_MIN_PART_SIZE = 1 * MIB


@pytest.fixture
def server(live_server: LiveServer) -> str:
    """The live server's origin, e.g. http://localhost:40123."""
    return str(live_server.url)


# --- the browser ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, once per session (Playwright's own browser download is never used)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run tests/browser/setup.sh (make pytest does).")
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


class NewContext(Protocol):
    def __call__(self, *, phone: bool = False) -> BrowserContext: ...


@pytest.fixture
def new_context(browser: Browser, server: str) -> Iterator[NewContext]:
    """Makes browser contexts on the live server (relative URLs work in `page.goto`), desktop
    1280 px wide or a 360 px touch phone; all are closed when the test ends."""
    contexts: list[BrowserContext] = []

    def make(*, phone: bool = False) -> BrowserContext:
        if phone:
            context = browser.new_context(
                base_url=server, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
            )
        else:
            context = browser.new_context(base_url=server, viewport=DESKTOP)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: NewContext) -> Page:
    """A desktop page (1280 px wide) in a fresh context, signed in as nobody."""
    return new_context().new_page()


@pytest.fixture
def phone_page(new_context: NewContext) -> Page:
    """A 360x740 touch phone page in a fresh context, signed in as nobody."""
    return new_context(phone=True).new_page()


@pytest.fixture
def page_errors(page: Page) -> list[str]:
    """Uncaught JavaScript errors and console errors of `page`; a test asserts it stays empty."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return errors


# --- who is signed in ----------------------------------------------------------------------
@pytest.fixture
def staff_user(tenant: Tenant) -> User:
    """A staff operator of tenant_a (and of nothing else)."""
    user = User.objects.create_user(username="operator", password="operator-pass", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OPERATOR)
    return user


def sign_in(context: BrowserContext, user: User, server: str) -> None:
    """Gives the context `user`'s session cookie, as if they had logged in through /admin/."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": server}])


def open_upload_page(page: Page, path: str = "/upload/") -> Page:
    """Opens the upload page and waits until its script has wired the page up."""
    page.goto(path)
    page.wait_for_selector("html[data-upload-ready]", state="attached")
    return page


@pytest.fixture
def staff_page(page: Page, staff_user: User, server: str) -> Page:
    """The upload page, desktop, as a staff operator of tenant_a."""
    sign_in(page.context, staff_user, server)
    return open_upload_page(page)


@pytest.fixture
def staff_phone_page(phone_page: Page, staff_user: User, server: str) -> Page:
    """The upload page on a 360 px phone, as a staff operator of tenant_a."""
    sign_in(phone_page.context, staff_user, server)
    return open_upload_page(phone_page)


LINK_ARTISAN = "art_link"


def open_upload_link(page: Page, tenant: Tenant, artisan_id: str = LINK_ARTISAN, days: int = 7) -> Page:
    """Opens a fresh upload link for `artisan_id` of `tenant` and follows it to /upload/."""
    from tenants.services import upload_link_create  # the lead's upload links (issue 7)

    _, url_path = upload_link_create(tenant=tenant, artisan_id=artisan_id, days=days)
    page.goto(url_path)
    page.wait_for_url(re.compile(r"/upload/$"))
    page.wait_for_selector("html[data-upload-ready]", state="attached")
    return page


@pytest.fixture
def link_page(page: Page, tenant: Tenant) -> Page:
    """The upload page, desktop, as artisan `art_link` of tenant_a through an upload link."""
    return open_upload_link(page, tenant)


# --- storage -------------------------------------------------------------------------------
@pytest.fixture
def s3_bucket(bucket: ServerBucket, server: str) -> ServerBucket:  # noqa: F811  (the imported fixture)
    """A fresh bucket on the moto server, used by the portal, prepared the way an operator
    prepares one (`manage.py s3_setup_bucket`): its CORS rule lets the page's origin PUT straight
    to the bucket and read each part's ETag."""
    call_command("s3_setup_bucket", "--origin", server, stdout=io.StringIO())
    return bucket


# --- tools ---------------------------------------------------------------------------------
class MakeFile(Protocol):
    def __call__(self, name: str, size: int, *, seed: int = 0, head: bytes = b"") -> Path: ...


@pytest.fixture
def make_file(tmp_path: Path) -> MakeFile:
    """Writes a file of exactly `size` bytes (a header such as a JPEG's magic bytes, then seeded
    random bytes) under tmp_path, for a file input to pick."""

    def make(name: str, size: int, *, seed: int = 0, head: bytes = b"") -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(head + random.Random(seed).randbytes(size - len(head)))
        return path

    return make


@dataclass
class RequestLog:
    """Every request a browser context sent, in order (across reloads and pages of the context)."""

    requests: list[Request] = field(default_factory=list)

    def of(self, method: str, pattern: str | re.Pattern[str]) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url)]

    def storage_puts(self) -> list[Request]:
        """PUTs of bytes to storage (the local backend's signed URLs or S3's): every PUT but the
        API's own progress notes."""
        return [r for r in self.requests if r.method == "PUT" and not urlsplit(r.url).path.startswith("/v1/")]

    def part_signings(self) -> list[Request]:
        return self.of("POST", r"/v1/catalog/uploads/med_\w+/parts$")

    def clear(self) -> None:
        self.requests.clear()


def log_requests(context: BrowserContext) -> RequestLog:
    """Starts logging the requests of every page of `context` (a reload keeps counting)."""
    log = RequestLog()
    context.on("request", lambda request: log.requests.append(request))
    return log


@pytest.fixture
def request_log(page: Page) -> RequestLog:
    """The requests of `page`'s context."""
    return log_requests(page.context)


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """`screenshot(page, "upload-phone-idle")` saves the whole page as a PNG under
    var/artifacts/screenshots/ and returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def axe_violations(page: Page, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Runs axe-core on the page as it is now; returns the violations of these impacts."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated, not added as a <script>: the pages' Content-Security-Policy refuses inline
        # scripts, and the test's own evaluation is not subject to it.
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]
