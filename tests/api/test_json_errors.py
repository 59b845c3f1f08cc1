"""API clients always get the error envelope, even from Django's own 404 and DRF's 405."""

from typing import Any

import pytest
from django.test import Client


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(settings: Any) -> None:
    settings.DEBUG = False
    assert_error(Client().get("/v1/catalog/nothing-here"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_unsafe_method_on_an_unknown_api_path_is_a_json_404_not_a_csrf_page(method: str) -> None:
    """A malformed id makes the URL unknown; a browser-less client sends no CSRF cookie."""
    response = getattr(Client(enforce_csrf_checks=True), method)("/v1/catalog/uploads/%C2%9D/parts/0")
    assert_error(response, 404, "not_found")


def test_wrong_method_is_a_json_405(api: Any) -> None:
    assert_error(api.get("/v1/catalog/upload/initiate"), 405, "method_not_allowed")


def test_missing_credentials_is_a_json_401_with_a_challenge(db: Any) -> None:
    response = Client().post("/v1/catalog/upload/initiate", {}, content_type="application/json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_form_encoded_body_is_a_json_415(api: Any) -> None:
    response = api.post("/v1/catalog/upload/initiate", {"artisanId": "a"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/catalog/status/trk_%00",
        "/v1/catalog/status/trk_0000000000000000000000%000",
        "/v1/catalog/uploads/med_%00/parts",
        "/v1/catalog/uploads/..%2F..%2Fetc",
        "/v1/catalog/uploads/" + "x" * 5000,
    ],
)
def test_malformed_ids_in_the_path_are_json_404s_without_a_query(
    api: Any, path: str, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert_error(api.get(path), 404, "not_found")
