"""The portal's URLs plus two reference endpoints a benchmark measures the API against:

- `GET /bench/bare`: the bare DRF view of issue 12, a constant dict with no authentication, no
  permission, no throttle and no database. What the framework costs by itself.
- `GET /bench/ping`: an empty DRF view with the API's own authentication, permission and
  throttle classes: what an API key costs before an endpoint does anything. Informative only
  (and the harness's readiness probe: it must answer 401 without a key)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import urls as portal_urls
from uploads.api.views import CatalogViewSet


class BareView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class PingView(APIView):
    # The very classes the v1 endpoints use: this pays for the same API-key lookup and throttles.
    authentication_classes = CatalogViewSet.authentication_classes
    permission_classes = CatalogViewSet.permission_classes
    throttle_classes = CatalogViewSet.throttle_classes

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    *portal_urls.urlpatterns,
    path("bench/bare", BareView.as_view(), name="bench-bare"),
    path("bench/ping", PingView.as_view(), name="bench-ping"),
]

handler404 = portal_urls.handler404
handler500 = portal_urls.handler500
