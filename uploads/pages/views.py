"""The browser's way in: the upload page, and the door an upload link opens. The page itself
speaks only the public v1 API; these views decide who may see it and with which scope."""

from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tenants.auth import UPLOAD_LINK_SESSION_KEY, operator_tenants, session_grant
from tenants.models import Tenant
from tenants.services import upload_link_open
from uploads.errors import UploadLinkInvalid, UploadLinkUnusable
from uploads.models import MediaKind
from uploads.services.media import tenant_max_bytes

# Names for the language picker, in English and in the language itself.
LANGUAGE_NAMES = {
    "as": "Assamese · অসমীয়া", "bn": "Bengali · বাংলা", "brx": "Bodo · बड़ो", "doi": "Dogri · डोगरी",
    "gu": "Gujarati · ગુજરાતી", "hi": "Hindi · हिन्दी", "kn": "Kannada · ಕನ್ನಡ", "ks": "Kashmiri · کٲشُر",
    "kok": "Konkani · कोंकणी", "mai": "Maithili · मैथिली", "ml": "Malayalam · മലയാളം",
    "mni": "Manipuri · ꯃꯤꯇꯩꯂꯣꯟ", "mr": "Marathi · मराठी", "ne": "Nepali · नेपाली", "or": "Odia · ଓଡ଼ିଆ",
    "pa": "Punjabi · ਪੰਜਾਬੀ", "sa": "Sanskrit · संस्कृतम्", "sat": "Santali · ᱥᱟᱱᱛᱟᱲᱤ", "sd": "Sindhi · سنڌي",
    "ta": "Tamil · தமிழ்", "te": "Telugu · తెలుగు", "ur": "Urdu · اردو", "en": "English",
}  # fmt: skip


@never_cache
def upload_page(request: HttpRequest) -> HttpResponse:
    if request.session.get(UPLOAD_LINK_SESSION_KEY):
        try:
            grant = session_grant(request)
        except UploadLinkUnusable as exc:
            request.session.pop(UPLOAD_LINK_SESSION_KEY, None)
            return _link_refused(request, exc)
        if grant is None:  # the link was deleted since it was opened
            request.session.pop(UPLOAD_LINK_SESSION_KEY, None)
            return _link_refused(request, UploadLinkInvalid("This upload link no longer exists. Ask for a new one."))
        assert grant.expires_at is not None
        until = date_format(grant.expires_at, "j F Y")
        label = f"Uploading for artisan {grant.artisan_id} of {grant.tenant.name}. This link works until {until}."
        return _render_page(request, scope="link", tenants=[grant.tenant], artisan_id=grant.artisan_id, label=label)
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return redirect(f"{reverse('admin:login')}?next={request.path}")
    tenants = operator_tenants(user)
    if not tenants:
        return render(request, "uploads/no_access.html", status=403)
    label = f"Signed in as {user.get_username()}: uploading for an artisan of " + ", ".join(t.name for t in tenants)
    return _render_page(request, scope="staff", tenants=tenants, artisan_id=None, label=label)


def _render_page(
    request: HttpRequest, *, scope: str, tenants: list[Tenant], artisan_id: str | None, label: str
) -> HttpResponse:
    config: dict[str, Any] = {
        "apiBase": "/v1",
        "csrfToken": get_token(request),
        "scope": scope,
        "tenants": [t.id for t in tenants],
        "tenantNames": {t.id: t.name for t in tenants},
        "artisanId": artisan_id,
        "languages": [{"code": c, "name": LANGUAGE_NAMES.get(c, c)} for c in settings.UPLOADS_LANGUAGES],
        "maxBytes": {t.id: {kind: tenant_max_bytes(tenant=t, kind=kind) for kind in MediaKind.values} for t in tenants},
        "statusUrlTemplate": "/v1/catalog/status/{trackingId}",
    }
    return render(request, "uploads/upload.html", {"config": config, "scope_label": label})


@never_cache
@require_http_methods(["GET", "POST"])
def link_open(request: HttpRequest) -> HttpResponse:
    """GET: a page whose script posts the token from the URL's fragment (never sent to a server,
    so never logged) and clears it from the address bar. POST: checks it and starts a session
    bound to the link's tenant and artisan, then sends the browser to the upload page."""
    if request.method == "GET":
        return render(request, "uploads/link_open.html")
    try:
        link = upload_link_open(token=request.POST.get("token", "").strip())
    except UploadLinkUnusable as exc:
        return _link_refused(request, exc)
    logout(request)  # a fresh session (new key) that carries nothing of whoever used this browser before
    request.session[UPLOAD_LINK_SESSION_KEY] = link.id
    response = redirect("upload-page")
    response.status_code = 303  # see other: the upload page, fetched with GET
    return response


def _link_refused(request: HttpRequest, error: UploadLinkUnusable) -> HttpResponse:
    return render(request, "uploads/link_unusable.html", {"error": error}, status=error.status_code)
