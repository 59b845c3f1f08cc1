from django.urls import path

from uploads.pages.views import link_open, upload_page

urlpatterns = [
    path("", upload_page, name="upload-page"),
    path("link", link_open, name="upload-link"),
]
