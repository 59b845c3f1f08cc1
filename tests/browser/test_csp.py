"""The Content-Security-Policy breaks nothing: the upload page (staff and through an upload
link), the admin (sign-in, dashboard, list, a submission with its photo preview), the API docs
(Swagger UI) and the landing page work in Chromium with no violation reported."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import BrowserContext, Page, expect

from tenants.models import Tenant
from tests.browser.conftest import NewContext, open_upload_link, open_upload_page, sign_in
from tests.browser.test_admin_triage import assert_thumbnail_shown, change_url, half_sent
from tests.conftest import client_for

pytestmark = pytest.mark.browser

# Every securitypolicyviolation event of every page of the context, kept across navigations.
RECORD_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  const seen = JSON.parse(sessionStorage.getItem('cspViolations') || '[]');
  seen.push(`${event.violatedDirective} blocked ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`);
  sessionStorage.setItem('cspViolations', JSON.stringify(seen));
});
"""


class Violations:
    """CSP violations seen by a context: the pages' own events and Chromium's console reports."""

    def __init__(self, context: BrowserContext) -> None:
        self.console: list[str] = []
        context.add_init_script(RECORD_VIOLATIONS)
        context.on(
            "console",
            lambda msg: self.console.append(msg.text) if "Content Security Policy" in msg.text else None,
        )

    def of(self, page: Page) -> list[str]:
        events: list[str] = page.evaluate("JSON.parse(sessionStorage.getItem('cspViolations') || '[]')")
        return events + self.console


def watched(new_context: NewContext) -> tuple[Page, Violations]:
    context = new_context()
    violations = Violations(context)
    return context.new_page(), violations


def test_upload_page_of_staff_and_of_an_upload_link_report_no_violation(
    new_context: NewContext, staff_user: User, tenant: Tenant, server: str
) -> None:
    page, violations = watched(new_context)
    sign_in(page.context, staff_user, server)
    open_upload_page(page)
    expect(page.locator("html[data-upload-ready]")).to_have_count(1)  # its ES modules ran
    assert violations.of(page) == []

    page, violations = watched(new_context)
    open_upload_link(page, tenant)  # the link page's own script, then the upload page
    assert violations.of(page) == []


def test_admin_sign_in_and_a_submission_with_its_photo_preview_report_no_violation(
    new_context: NewContext, tenant: Tenant
) -> None:
    submission = half_sent(client_for(tenant))
    User.objects.create_superuser("root", password="root-pass-42")
    page, violations = watched(new_context)
    page.goto("/admin/login/")  # the real sign-in form (the throttled one)
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-pass-42")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    page.goto("/admin/uploads/submission/")
    expect(page.get_by_role("link", name=submission.tracking_id)).to_be_visible()
    page.goto(change_url(submission))
    assert_thumbnail_shown(page)  # its signed GET URL, under img-src
    assert violations.of(page) == []


def test_swagger_ui_renders_the_api_with_no_violation(new_context: NewContext) -> None:
    page, violations = watched(new_context)
    page.goto("/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Catalog upload portal API")
    expect(page.locator(".opblock").first).to_be_visible()  # the operations, from /v1/schema/
    assert violations.of(page) == []


def test_landing_page_reports_no_violation(new_context: NewContext) -> None:
    page, violations = watched(new_context)
    page.goto("/")
    assert violations.of(page) == []


def test_an_inline_script_is_refused(new_context: NewContext, settings: Any) -> None:
    """The check above can fail: a script the policy does not allow is reported."""
    page, violations = watched(new_context)
    page.goto("/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; "
        "document.body.append(s); }"
    )
    assert page.evaluate("typeof window.ran") == "undefined"
    page.wait_for_function("() => (sessionStorage.getItem('cspViolations') || '').includes('script-src')")
    assert any("script-src" in seen for seen in violations.of(page))
