"""`manage.py check --deploy` is clean with the settings an operator sets for a portal served over
HTTPS; the health probes stay reachable over plain HTTP when every other page redirects."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.once
def test_check_deploy_reports_nothing_with_the_production_env(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "portal.settings",  # settings are read at import: a fresh process
        "PORTAL_DATA_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "portal.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
        "PORTAL_BASE_URL": "https://portal.example.com",
        "PORTAL_BEHIND_TLS_PROXY": "1",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.once
def test_https_settings_default_off_for_the_embedded_mode() -> None:
    assert django_settings.SECURE_SSL_REDIRECT is False
    assert django_settings.SECURE_HSTS_SECONDS == 0


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_ssl_redirect_spares_the_health_probes(settings: Any, path: str) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get(path)
    assert response.status_code != 301, response.get("Location")


@pytest.mark.django_db
def test_ssl_redirect_sends_pages_to_https(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/admin/login/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.mark.django_db
def test_hsts_header_carries_subdomains_and_preload_when_set(settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = Client().get("/admin/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"
