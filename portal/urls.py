from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from uploads.storage_views import local_put

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include("uploads.api.urls")),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("storage/put/<str:token>", local_put, name="local-storage-put"),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
