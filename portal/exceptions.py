"""The one place API errors are rendered: `{"error": {"code", "message", "details"}}`."""

import logging
from collections.abc import Sequence
from typing import Any

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.parsers import RequestTooLarge
from portal.throttling import rate_limit_refusals
from uploads.errors import DomainError

logger = logging.getLogger(__name__)

_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid_input",
    RequestTooLarge: "too_large",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def domain_error_response(exc: DomainError) -> JsonResponse:
    """A domain error answered by a plain Django view (storage, Uppy routes), as DRF answers it."""
    return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status_code)


def method_not_allowed_response(method: str, allowed: Sequence[str], hint: str = "") -> JsonResponse:
    """Django's own 405 is an empty page; machine-facing views answer in the error shape."""
    message = f"Method {method} not allowed here." + (f" {hint}" if hint else "")
    response = JsonResponse(error_body("method_not_allowed", message), status=405)
    response["Allow"] = ", ".join(allowed)
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # A DRF exception may wrap a domain error (an authentication class must raise DRF's own).
    domain = exc if isinstance(exc, DomainError) else getattr(exc, "domain_error", None)
    if isinstance(domain, DomainError):
        status_code = exc.status_code if isinstance(exc, exceptions.APIException) else domain.status_code
        return Response(error_body(domain.code, domain.message, domain.details), status=status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, reported as a 500 with the traceback logged
    assert isinstance(exc, exceptions.APIException)
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "The request is not valid.", {"fields": exc.detail})
    elif isinstance(exc, exceptions.Throttled):
        # DRF has set Retry-After; the body says it too, and which limit was reached.
        limits = rate_limit_refusals(context.get("request"))
        response.data = error_body(code, str(exc.detail), {"retryAfter": getattr(exc, "wait", None), "limits": limits})
    else:
        response.data = error_body(code, str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response
