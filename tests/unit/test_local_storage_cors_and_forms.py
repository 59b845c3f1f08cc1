"""The local backend's CORS (as the bucket's rule does on S3) and its form POST's bounded reading."""

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests.helpers import PHOTO, assert_error, stored_files
from uploads.storage import get_storage
from uploads.storage_views import local_post

APP = "https://app.example"
KEY = "tenant_a/art_1/trk_000000000000000000000000/med_000000000000000000000000.jpg"


@pytest.fixture(autouse=True)
def cors_origins(settings: Any) -> None:
    settings.UPLOADS_CORS_ORIGINS = [APP]


def signed_put() -> str:
    return get_storage().presign_put(key=KEY, content_type="image/jpeg", size=len(PHOTO), expires_in=60).url


def put_photo(origin: str) -> Any:
    return Client().put(
        signed_put(), PHOTO, content_type="image/jpeg", headers={"If-None-Match": "*", "Origin": origin}
    )


def preflight(path: str, origin: str, method: str = "PUT") -> Any:
    return Client().options(path, headers={"Origin": origin, "Access-Control-Request-Method": method})


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_configured_origins_preflight_is_answered(method: str) -> None:
    for path in (signed_put(), "/storage/post/"):
        response = preflight(path, APP, method)
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == APP
        assert response["Access-Control-Allow-Methods"] == "PUT, POST"
        assert response["Access-Control-Allow-Headers"] == "Content-Type, If-None-Match"
        assert response["Access-Control-Expose-Headers"] == "ETag"
        assert int(response["Access-Control-Max-Age"]) > 0


@pytest.mark.parametrize(("origin", "method"), [("https://evil.example", "PUT"), (APP, "DELETE"), (APP, "")])
def test_other_origins_and_methods_get_a_403_preflight_without_cors_headers(origin: str, method: str) -> None:
    response = preflight(signed_put(), origin, method)
    assert_error(response, 403, "cross_site_refused")
    assert "Access-Control-Allow-Origin" not in response


def test_a_put_from_a_configured_origin_may_read_its_etag() -> None:
    response = put_photo(APP)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Expose-Headers"] == "ETag"


def test_answers_to_other_origins_carry_no_cors_headers() -> None:
    response = put_photo("https://evil.example")
    assert response.status_code == 200  # stored, as S3 would; the browser keeps the answer from the page
    assert "Access-Control-Allow-Origin" not in response
    assert response["Vary"] == "Origin"


def test_a_form_post_from_a_configured_origin_may_read_its_etag() -> None:
    form = get_storage().presign_post(key=KEY, content_type="image/jpeg", max_bytes=len(PHOTO), expires_in=60)
    body = {**form.fields, "file": SimpleUploadedFile("blob", PHOTO, content_type="image/jpeg")}
    response = Client().post(form.url, body, headers={"Origin": APP})
    assert response.status_code == 204
    assert (response["Access-Control-Allow-Origin"], response["Access-Control-Expose-Headers"]) == (APP, "ETag")


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def test_a_form_post_stops_reading_once_the_file_passes_the_policys_size(db: None) -> None:
    """Memory and disk stay bounded whatever is sent: the policy is checked before the file's
    first byte, and reading stops at the first chunk past its size, not at the end of the body."""
    limit = 64 * 1024
    form = get_storage().presign_post(key=KEY, content_type="image/jpeg", max_bytes=limit, expires_in=60)
    big = b"\xff\xd8\xff" + bytes(16 * 1024 * 1024)
    body = encode_multipart(BOUNDARY, {**form.fields, "file": SimpleUploadedFile("blob", big, "image/jpeg")})
    stream = CountingStream(body)
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/storage/post/",
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.input": stream,
            "wsgi.url_scheme": "http",
        }
    )
    response = local_post(request)
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "too_large"
    assert response["Connection"] == "close"
    assert stream.consumed < 2 * 1024 * 1024, stream.consumed
    assert [f for f in stored_files() if not f.endswith(".lock")] == []
