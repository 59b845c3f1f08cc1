"""Companion-compatible S3 routes under /uppy/s3/, so stock Uppy uploads into the portal."""

from django.urls import URLPattern, path

from uploads.uppy import views

urlpatterns: list[URLPattern] = [
    path("s3/params", views.upload_parameters, name="uppy-params"),
    path("s3/multipart", views.create_multipart, name="uppy-multipart"),
    path("s3/multipart/<str:upload_id>", views.upload, name="uppy-upload"),
    # Before the part route, whose <str:part_number> would also match "complete".
    path("s3/multipart/<str:upload_id>/complete", views.complete_multipart, name="uppy-complete"),
    path("s3/multipart/<str:upload_id>/<str:part_number>", views.sign_part, name="uppy-part"),
]
