from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.middleware import healthz, readyz
from portal.views import api_not_found, landing

urlpatterns = [
    path("", landing, name="landing"),
    # Load balancers' probes. HealthCheckMiddleware answers them first, whatever the Host header.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("upload/", include("uploads.pages.urls")),
    # The one-time link `create_staff` prints: a new staff member chooses a password (Django's
    # password-reset token, spent once the password is set).
    path(
        "admin/password-set/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("admin/password-set/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
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
