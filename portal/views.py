"""The landing page, and JSON answers for errors Django itself raises outside DRF (unknown URLs,
crashes), so API clients never have to parse an HTML page."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from portal.exceptions import error_body

_API_PREFIXES = ("/v1/", "/storage/", "/uppy/")


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html")


@csrf_exempt  # no URL here changes anything: a POST to it is a 404, not Django's HTML CSRF page
def api_not_found(request: HttpRequest) -> HttpResponse:
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(_API_PREFIXES):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(_API_PREFIXES):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    return defaults.server_error(request)
