from django.urls import path

from uploads.api.views import CatalogViewSet, UploadViewSet

upload = UploadViewSet.as_view
urlpatterns = [
    path("catalog/upload/initiate", CatalogViewSet.as_view({"post": "initiate"}), name="upload-initiate"),
    path("catalog/upload/complete", CatalogViewSet.as_view({"post": "complete"}), name="upload-complete"),
    path("catalog/status/<str:tracking_id>", CatalogViewSet.as_view({"get": "status"}), name="submission-status"),
    path("catalog/uploads", upload({"post": "create"}), name="upload-list"),
    path("catalog/uploads/<str:media_id>", upload({"get": "retrieve", "delete": "destroy"}), name="upload-detail"),
    path("catalog/uploads/<str:media_id>/parts", upload({"post": "sign_parts"}), name="upload-parts"),
    path(
        "catalog/uploads/<str:media_id>/parts/<int:part_number>",
        upload({"put": "record_part"}),
        name="upload-part",
    ),
    path("catalog/uploads/<str:media_id>/complete", upload({"post": "complete"}), name="upload-complete-media"),
]
