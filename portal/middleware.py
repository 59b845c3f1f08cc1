"""The outermost middleware: every request gets an id and one log line, and the health probes
are answered before anything else runs (no host check, no session, no CSRF, no throttle)."""

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from portal import health
from portal.observability import (
    REQUEST_ID_HEADER,
    Stopwatch,
    current_context,
    log_context,
    log_scope,
    request_id_from,
    route_of,
)
from portal.tracing import current_trace_id

logger = logging.getLogger("portal.request")

# The URL kwargs and the response fields that name what a request concerns.
_KWARG_FIELDS = {"tracking_id": "trackingId", "media_id": "mediaId"}
_BODY_FIELDS = ("trackingId", "mediaId")


class RequestContextMiddleware:
    """Opens the request's log context with its id (the caller's X-Request-ID when well formed),
    returns the id on every response, errors included, and logs one line when the response is
    ready: method, route (never the path itself: upload links and storage URLs carry tokens in
    it), status, duration and the context (tenant, trackingId, mediaId)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        watch = Stopwatch()
        with log_scope(request_id=request_id, _request=request):
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            _note_response_fields(response)
            status = response.status_code
            route = _route(request)
            level = logging.INFO
            if route in health.PROBE_PATHS:  # a load balancer's probes would fill the log
                level = logging.DEBUG if status < 400 else logging.WARNING
            if logger.isEnabledFor(level):
                logger.log(
                    level,
                    "%s %s %s",
                    request.method,
                    route,
                    status,
                    extra={"method": request.method, "path": route, "status": status, "duration_ms": watch.ms()},
                )
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        """Runs inside every middleware, Django's tracing one included (it comes after this one,
        so its span is only active from here on)."""
        log_context(trace_id=current_trace_id(), **{field: kwargs.get(name) for name, field in _KWARG_FIELDS.items()})


class HealthCheckMiddleware:
    """/healthz and /readyz, answered here rather than by a view: a load balancer probes with
    its own Host header (an IP), which ALLOWED_HOSTS would refuse, and a probe must pass no
    matter the throttles, sessions or CSRF behind it. GET and HEAD only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = health.PROBE_PATHS.get(request.path_info)
        if probe is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        return probe_response(probe)


def probe_response(probe: str) -> JsonResponse:
    if probe == "live":
        body, ok = health.liveness(), True
    else:
        body = health.readiness()
        ok = body["status"] == "ok"
    response = JsonResponse(body, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The route behind the middleware (reverse('healthz'), and a site without the middleware)."""
    return probe_response("live")


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    return probe_response("ready")


def _route(request: HttpRequest) -> str:
    if request.path_info in health.PROBE_PATHS:
        return request.path_info
    return route_of(request)


def _note_response_fields(response: HttpResponse) -> None:
    """The ids a response names (initiate returns the new trackingId and mediaId, an error its
    details), for requests whose URL names none."""
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        return
    error = data.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    known = current_context()
    for source in (data, details if isinstance(details, dict) else {}):
        for field in _BODY_FIELDS:
            if field not in known and isinstance(source.get(field), str):
                log_context(**{field: source[field]})
                known[field] = source[field]
