"""The operator's way in: create a tenant, mint a key, and use it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_revoke, hash_api_key

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_key_prints_a_working_key_alone_on_its_last_line() -> None:
    run("create_tenant", "tenant_x", "--name", "X Crafts")
    raw = run("create_api_key", "tenant_x").splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/v1/catalog/uploads", {"artisanId": "a", "contentType": "image/png", "fileSize": 5})
    assert response.status_code == 201
    assert response.json()["key"].startswith("tenant_x/")


def test_api_key_is_stored_hashed_with_a_visible_prefix() -> None:
    run("create_tenant", "tenant_x", "--name", "X")
    raw = run("create_api_key", "tenant_x").splitlines()[-1]
    key = ApiKey.objects.get()
    assert key.hashed_key == hash_api_key(raw) != raw
    assert raw.startswith(key.prefix)
    assert raw not in {key.prefix, key.hashed_key, key.name}


def test_revoked_key_no_longer_authenticates() -> None:
    run("create_tenant", "tenant_x", "--name", "X")
    raw = run("create_api_key", "tenant_x").splitlines()[-1]
    api_key_revoke(api_key=ApiKey.objects.get())
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    response = client.get("/v1/catalog/status/trk_000000000000000000000000")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize("tenant_id", ["Tenant_Upper", "a/b", "", "x" * 64, "../up"])
def test_create_tenant_refuses_ids_that_cannot_prefix_a_key(tenant_id: str) -> None:
    with pytest.raises(CommandError):
        run("create_tenant", tenant_id, "--name", "Bad")
    assert not Tenant.objects.exists()


def test_create_tenant_twice_is_an_error_not_a_crash() -> None:
    run("create_tenant", "tenant_x", "--name", "X")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "tenant_x", "--name", "X again")


def test_create_api_key_for_unknown_tenant_is_an_error() -> None:
    with pytest.raises(CommandError, match="No tenant"):
        run("create_api_key", "nobody")
