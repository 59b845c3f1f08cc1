"""What a new user meets first: the landing page, the API docs without internet, and JSON (never
an HTML page) for any unknown or malformed address under the machine-facing prefixes."""

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_landing_page_links_the_upload_page_the_admin_and_the_api_docs() -> None:
    page = Client().get("/")
    assert page.status_code == 200
    for href in ('href="/upload/"', 'href="/admin/"', 'href="/v1/docs/"'):
        assert href.encode() in page.content


def test_api_docs_load_nothing_from_another_site() -> None:
    page = Client().get("/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), f"{source} is not a static file we ship"


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/catalog/status/not-a-tracking-id",
        "/v1/catalog/uploads/med_123/parts",
        "/v1/nothing-here",
        "/storage/nothing-here",
        "/uppy/nothing-here",
    ],
)
def test_unknown_api_addresses_answer_json_404_in_every_mode(settings: Any, debug: bool, path: str) -> None:
    settings.DEBUG = debug
    assert_error(Client().get(path), 404, "not_found")


def test_unknown_page_addresses_stay_html(settings: Any) -> None:
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
