from django.urls import path, register_converter

from uploads.api.views import CatalogViewSet, PipelineViewSet, UploadViewSet
from uploads.keys import MEDIA_ID_PATTERN, TRACKING_ID_PATTERN


class TrackingIdConverter:
    """Only well-formed ids reach a view, so no stray byte (a NUL, say) ever reaches a query."""

    regex = TRACKING_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class MediaIdConverter(TrackingIdConverter):
    regex = MEDIA_ID_PATTERN


register_converter(TrackingIdConverter, "tracking_id")
register_converter(MediaIdConverter, "media_id")

upload = UploadViewSet.as_view
urlpatterns = [
    path("catalog/upload/initiate", CatalogViewSet.as_view({"post": "initiate"}), name="upload-initiate"),
    path("catalog/upload/complete", CatalogViewSet.as_view({"post": "complete"}), name="upload-complete"),
    path(
        "catalog/status/<tracking_id:tracking_id>", CatalogViewSet.as_view({"get": "status"}), name="submission-status"
    ),
    path(
        "catalog/status/<tracking_id:tracking_id>/events",
        PipelineViewSet.as_view({"post": "events"}),
        name="submission-events",
    ),
    path("catalog/uploads", upload({"post": "create"}), name="upload-list"),
    path("catalog/uploads/<media_id:media_id>", upload({"get": "retrieve", "delete": "destroy"}), name="upload-detail"),
    path("catalog/uploads/<media_id:media_id>/parts", upload({"post": "sign_parts"}), name="upload-parts"),
    path(
        "catalog/uploads/<media_id:media_id>/parts/<int:part_number>",
        upload({"put": "record_part"}),
        name="upload-part",
    ),
    path("catalog/uploads/<media_id:media_id>/complete", upload({"post": "complete"}), name="upload-complete-media"),
]
