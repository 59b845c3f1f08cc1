"""Every HTML page carries a Content-Security-Policy: scripts and styles only from our static
files or with the response's nonce, requests and media only to this site and its storage."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import BUCKET, REGION

pytestmark = pytest.mark.django_db


def directives(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/v1/docs/", "/upload/link/", "/no-such-page/"])
def test_html_pages_allow_only_own_or_nonced_scripts(path: str) -> None:
    response = Client().get(path)
    assert response["Content-Type"].startswith("text/html")
    policy = directives(response)
    nonce = next(v for v in policy["script-src"] if v.startswith("'nonce-"))
    assert policy["script-src"] == ["'self'", nonce]
    assert policy["style-src"] == ["'self'", nonce]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]


def test_admin_pages_carry_the_policy(settings: Any) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    assert "script-src 'self'" in client.get("/admin/")["Content-Security-Policy"]


def test_each_response_has_its_own_nonce_and_the_docs_inline_script_carries_it() -> None:
    first, second = Client().get("/v1/docs/"), Client().get("/v1/docs/")
    nonces = [re.search(r"'nonce-([^']+)'", r["Content-Security-Policy"]).group(1) for r in (first, second)]  # type: ignore[union-attr]
    assert nonces[0] != nonces[1]
    html = first.content.decode()
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "the Swagger UI page starts from an inline script and styles"
    assert all(f'nonce="{nonces[0]}"' in attributes for _, attributes in inline)


def test_local_storage_is_this_site() -> None:
    policy = directives(Client().get("/"))
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]


def test_s3_bucket_origin_is_allowed_for_requests_images_and_media(s3: Any) -> None:
    policy = directives(Client().get("/"))
    origin = f"https://{BUCKET}.s3.{REGION}.amazonaws.com"
    assert policy["connect-src"] == ["'self'", origin]
    assert origin in policy["img-src"] and origin in policy["media-src"]


def test_extra_origins_and_report_only_come_from_settings(settings: Any) -> None:
    settings.CSP_EXTRA_ORIGINS = ["https://cdn.example.com"]
    settings.CSP_REPORT_ONLY = True
    response = Client().get("/")
    assert "Content-Security-Policy" not in response
    assert "connect-src 'self' https://cdn.example.com;" in response["Content-Security-Policy-Report-Only"]


def test_json_responses_carry_no_policy() -> None:
    response = Client().get("/v1/schema/")
    assert "Content-Security-Policy" not in response
