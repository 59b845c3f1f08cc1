"""The portal's URLs plus `GET /bench/ping`: a DRF view that does nothing but authenticate like
the API does, so a benchmark can tell the framework's cost from the endpoints' own."""

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import urls as portal_urls
from uploads.api.views import CatalogViewSet


class PingView(APIView):
    # The very classes the v1 endpoints use: the baseline pays for the same API-key lookup.
    authentication_classes = CatalogViewSet.authentication_classes
    permission_classes = CatalogViewSet.permission_classes

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [*portal_urls.urlpatterns, path("bench/ping", PingView.as_view(), name="bench-ping")]

handler404 = portal_urls.handler404
handler500 = portal_urls.handler500
