"""The client's tests share a live portal with small parts, two tenants' keys and two files."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from pytest_django.live_server_helper import LiveServer

from tenants.models import ApiKey
from tenants.services import api_key_create, tenant_create
from uploads.client import CatalogClient

MIB = 1024 * 1024
PART = 256 * 1024  # the plan's part size in these tests: a 1.3 MiB audio is 6 parts


@pytest.fixture
def small_parts() -> Iterator[None]:
    with override_settings(UPLOADS_DEFAULT_PART_SIZE=PART, UPLOADS_MULTIPART_THRESHOLD=PART):
        yield


@pytest.fixture
def keys() -> dict[str, str]:
    keys = {}
    for tenant_id in ("tenant_a", "tenant_b"):
        tenant = tenant_create(tenant_id=tenant_id, name=tenant_id)
        keys[tenant_id] = api_key_create(tenant=tenant)[1]
        keys[f"{tenant_id}:pipeline"] = api_key_create(tenant=tenant, role=ApiKey.Role.PIPELINE)[1]
    return keys


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    photo, audio = tmp_path / "vase.jpg", tmp_path / "vase.wav"
    photo.write_bytes(os.urandom(200_000))
    audio.write_bytes(os.urandom(5 * PART + 12_345))
    return photo, audio


def client(live_server: LiveServer, key: str, tmp_path: Path, **options: Any) -> CatalogClient:
    return CatalogClient(live_server.url, key, state_dir=tmp_path / "state", retries=3, **options)
