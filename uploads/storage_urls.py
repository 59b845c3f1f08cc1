"""Where the local backend's signed URLs and forms point (unused on S3, whose URLs point at the bucket)."""

from django.urls import path

from uploads.storage_views import local_get, local_post, local_put

urlpatterns = [
    path("put/<str:token>", local_put, name="local-storage-put"),
    path("post/", local_post, name="local-storage-post"),
    path("get/<str:token>", local_get, name="local-storage-get"),
]
