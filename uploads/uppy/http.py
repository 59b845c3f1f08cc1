"""The HTTP rules of the Uppy routes, written once: stock Uppy sends no CSRF token and no custom
header, so a cross-site request is refused by what browsers do send (Origin, Sec-Fetch-Site) and
by accepting JSON bodies only, which no HTML form can send cross-site without a CORS preflight
this site never grants. Every answer, refusals included, is JSON in the API's error shape."""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from portal.exceptions import domain_error_response, method_not_allowed_response
from uploads.errors import CrossSiteRefused, DomainError, MalformedBody, UnsupportedMediaType

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]


def check_same_origin(request: HttpRequest) -> None:
    """The request must come from this site's own pages: its Origin names this scheme and host,
    or, where a browser sends no Origin (same-origin GETs), Sec-Fetch-Site says same-origin.
    A request with neither is refused too: it is no browser's, and a script has no cookies."""
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin != f"{request.scheme}://{request.get_host()}":
            raise CrossSiteRefused(
                "Requests from other sites are refused.", details={"origin": origin, "header": "Origin"}
            )
        return
    if request.headers.get("Sec-Fetch-Site") != "same-origin":
        raise CrossSiteRefused(
            "Send the Origin header (browsers do): this endpoint takes requests from this site's pages only.",
            details={"header": "Origin"},
        )


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body; any other content type is refused before it is read."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "Send the body as JSON (Content-Type: application/json).",
            details={"contentType": request.content_type or ""},
        )
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("The body is not valid JSON.") from None


def uppy_route(*methods: str) -> Callable[[View[P]], View[P]]:
    """Allowed methods, the same-site check and JSON errors, around one Uppy route. A DELETE
    (or any request without a JSON body) must carry no body at all."""

    def decorate(view: View[P]) -> View[P]:
        @csrf_exempt  # replaced by check_same_origin and JSON-only bodies, see the module's docstring
        @wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if request.method not in methods:
                return method_not_allowed_response(request.method or "", methods)
            try:
                check_same_origin(request)
                if request.method in ("GET", "DELETE") and request.body:
                    raise MalformedBody(f"A {request.method} request here has no body.")
                return view(request, *args, **kwargs)
            except DomainError as exc:
                return domain_error_response(exc)

        return wrapped

    return decorate
