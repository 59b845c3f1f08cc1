"""The admin site of the portal: its index is the triage dashboard of the staff member's
tenants, and it has one search box for whatever a ticket quotes."""

from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.text import Truncator

from portal.login_throttle import client_address, login_failed, login_locked_for, login_succeeded
from tenants.admin_scoping import staff_tenant_ids
from uploads.dashboard import Dashboard, dashboard_for
from uploads.selectors import submissions_matching


class ThrottledAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form, refused for a while after repeated failures (see
    portal/login_throttle.py). A refused attempt never reaches the password check, so a guess
    made during the cool-off learns nothing, not even a right password."""

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)
        wait = login_locked_for(username=username, address=address)
        if wait is not None:
            minutes = max(1, -(-wait // 60))
            raise ValidationError(
                "Too many failed sign-ins. Sign-in is paused for %(minutes)s more minute(s); "
                "try again then, or ask an administrator.",
                code="locked_out",
                params={"minutes": minutes},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failed(username=username, address=address)
            raise
        if self.get_user() is not None:
            login_succeeded(username=username)
        return cleaned


class PortalAdminSite(admin.AdminSite):
    site_header = "Catalog upload portal"
    site_title = "Catalog upload portal"
    index_title = "Triage"
    enable_nav_sidebar = False  # the submission list needs the width; every page has breadcrumbs
    login_form = ThrottledAuthenticationForm

    def triage_scope(self, request: HttpRequest) -> Collection[str] | None:
        """The tenants whose rows this user may see: None means every tenant (superusers)."""
        return None if request.user.is_superuser else staff_tenant_ids(request)

    def has_triage_permission(self, request: HttpRequest) -> bool:
        """Like the scoped model admins' module permission: staff need a membership."""
        return request.user.is_active and (
            request.user.is_superuser or (request.user.is_staff and bool(staff_tenant_ids(request)))
        )

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        dashboard: Dashboard | None = None
        if self.has_triage_permission(request):
            dashboard = dashboard_for(tenant_ids=self.triage_scope(request))
        context = {"dashboard": dashboard, "dashboard_cache_seconds": settings.ADMIN_DASHBOARD_CACHE_SECONDS}
        return super().index(request, extra_context={**context, **(extra_context or {})})

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [path("search/", self.admin_view(self.search), name="search"), *super().get_urls()]

    def search(self, request: HttpRequest) -> HttpResponseRedirect:
        """One match opens it, several open the list filtered by the same query, none says so.
        Another tenant's id finds nothing, exactly like an unknown one."""
        if not self.has_triage_permission(request):
            raise PermissionDenied
        query = request.GET.get("q", "").strip()
        index = reverse("admin:index", current_app=self.name)
        if not query:
            return HttpResponseRedirect(index)
        found = list(
            submissions_matching(query=query, tenant_ids=self.triage_scope(request)).values_list("pk", flat=True)[:2]
        )
        if len(found) == 1:
            return HttpResponseRedirect(
                reverse("admin:uploads_submission_change", args=[found[0]], current_app=self.name)
            )
        if found:
            changelist = reverse("admin:uploads_submission_changelist", current_app=self.name)
            return HttpResponseRedirect(f"{changelist}?{urlencode({'q': query})}")
        shown = Truncator(query).chars(80)
        messages.info(request, f"Nothing matches “{shown}” in your tenants.")
        return HttpResponseRedirect(index)
