"""Content-Security-Policy for every HTML page (admin, upload page, upload links, API docs,
landing, error pages): scripts and styles only from our own static files, or inline with this
response's nonce (Swagger UI's start-up script and styles, templates/drf_spectacular/); no
plugins, no <base> tricks, no framing; network requests, images and media only to this site and
to the storage the signed URLs point at (an S3 bucket's origin), plus CSP_EXTRA_ORIGINS.
blob: and data: images and media: the upload page previews chosen photos and recordings.

CSP_REPORT_ONLY=1 sends the policy as Content-Security-Policy-Report-Only: browsers then report
violations in their console without blocking, for trying a change on a live site first."""

import secrets
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]  # for templates: {{ request.csp_nonce }}
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and not getattr(response, "csp_exempt", False):
            header = "Content-Security-Policy-Report-Only" if settings.CSP_REPORT_ONLY else "Content-Security-Policy"
            if header not in response:
                response[header] = policy(nonce)
        return response


def csp_exempt(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a page that is not the portal's own (a test's stand-in for another site's page)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> HttpResponse:
        response = view(*args, **kwargs)
        response.csp_exempt = True  # type: ignore[attr-defined]
        return response

    return wrapped


def policy(nonce: str) -> str:
    remote = " ".join(_remote_origins())
    own = f"'self' {remote}".strip()
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        f"img-src {own} data: blob:",
        f"media-src {own} blob:",
        f"connect-src {own}",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def _remote_origins() -> list[str]:
    origins = list(settings.CSP_EXTRA_ORIGINS)
    storage = storage_origin()
    if storage and storage not in origins:
        origins.append(storage)
    return origins


def storage_origin() -> str | None:
    """The origin the signed storage URLs point at (None: this site, the local backend)."""
    from uploads.storage import get_storage  # at request time: settings may switch backends

    storage: Any = get_storage()  # hashable in fact: one cached instance per configuration
    return _origin_of(storage)


@lru_cache(maxsize=8)
def _origin_of(storage: Any) -> str | None:
    # The URL the backend itself signs, so bucket, region, endpoint and addressing style are
    # exactly what a browser will contact; signing is local (no request is made).
    url: str = storage.presign_get(key="csp-origin", expires_in=60).url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
