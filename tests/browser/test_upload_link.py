"""Upload links in a real browser: the secret travels only once, in a form body (never in a
request line, a Referer or the address bar), and a link that expired or was revoked gets a page
that says so."""

from datetime import timedelta
from urllib.parse import parse_qs, quote

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Request, expect

from tenants.models import Tenant, UploadLink
from tenants.services import upload_link_create, upload_link_revoke
from tests.browser.conftest import RequestLog, open_upload_link

pytestmark = pytest.mark.browser


def test_opening_a_link_sends_its_secret_once_in_a_form_body_and_clears_the_address_bar(
    page: Page, tenant: Tenant, server: str, request_log: RequestLog
) -> None:
    _, path = upload_link_create(tenant=tenant, artisan_id="art_link")
    token = path.split("#", 1)[1]
    page.goto(path)
    page.wait_for_url(f"{server}/upload/")
    expect(page.locator("#scope-label")).to_contain_text("art_link")

    forms = [r for r in request_log.requests if parse_qs(r.post_data or "").get("token") == [token]]
    assert [(r.method, r.url) for r in forms] == [("POST", f"{server}/upload/link")]
    for request in request_log.requests:
        for secret in (token, quote(token, safe="")):
            assert secret not in request.url
            assert secret not in (request.headers.get("referer") or "")
    page.go_back()  # the history entry of the link page kept no fragment either
    assert token not in page.url


def test_an_expired_link_gets_a_page_that_says_so(page: Page, tenant: Tenant) -> None:
    link, path = upload_link_create(tenant=tenant, artisan_id="art_link")
    UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    page.goto(path)
    expect(page.get_by_role("heading", level=1)).to_have_text("This upload link has expired")
    expect(page.get_by_role("alert")).to_contain_text("Ask for a new one")


def test_a_link_revoked_while_its_page_is_open_gets_its_page_on_the_next_visit(page: Page, tenant: Tenant) -> None:
    open_upload_link(page, tenant)
    upload_link_revoke(link=UploadLink.objects.get())
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("This upload link was withdrawn")


def test_the_link_page_clears_the_secret_from_the_address_bar_before_posting_it(
    page: Page, tenant: Tenant, server: str
) -> None:
    """On a slow network the link page stays up while its form is on the way: its address bar
    (and its history entry) must already be without the secret."""
    _, path = upload_link_create(tenant=tenant, artisan_id="art_link")
    address_when_posting: list[str] = []

    def note_address(request: Request) -> None:
        if request.method == "POST":
            address_when_posting.append(page.url)

    page.on("request", note_address)
    page.goto(path)
    page.wait_for_url(f"{server}/upload/")
    assert address_when_posting == [f"{server}/upload/link"]
