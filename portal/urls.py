from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.views import api_not_found, landing

urlpatterns = [
    path("", landing, name="landing"),
    path("upload/", include("uploads.pages.urls")),
    path("admin/", admin.site.urls),
    path("v1/", include("uploads.api.urls")),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("uppy/", include("uploads.uppy.urls")),
    path("storage/", include("uploads.storage_urls")),
    # Anything else under the machine-facing prefixes is a JSON 404 in every mode: with DEBUG on,
    # Django would answer its HTML debug page before handler404 is consulted.
    re_path(r"^(?:v1|storage|uppy)/", api_not_found),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
