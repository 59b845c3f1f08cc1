"""Tenant staff and API keys in the admin: operators mint (the secret shown once), name and revoke
their tenants' keys, viewers read them, other tenants' keys do not exist for them; tenants and
memberships are for superusers alone."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_create
from tests.helpers import UNKNOWN_TRACKING_ID, staff_client, superuser_client

pytestmark = pytest.mark.django_db

KEYS = "/admin/tenants/apikey/"


def status_with(raw_key: str) -> int:
    """What the API answers this key: 404 for an unknown tracking id once the key is accepted."""
    return Client().get(f"/v1/catalog/status/{UNKNOWN_TRACKING_ID}", HTTP_AUTHORIZATION=f"Bearer {raw_key}").status_code


@pytest.fixture
def keys(tenant: Tenant, other_tenant: Tenant) -> dict[str, tuple[ApiKey, str]]:
    return {
        "mine": api_key_create(tenant=tenant, name="Android app"),
        "theirs": api_key_create(tenant=other_tenant, name="Their app"),
    }


def viewer_of(tenant: Tenant) -> Client:
    return staff_client(tenant, Membership.Role.VIEWER, "viewer")


def operator_of(tenant: Tenant) -> Client:
    return staff_client(tenant, Membership.Role.OPERATOR, "operator")


# --- who sees which keys ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "status", "sees_mine", "sees_theirs"),
    [
        ("superuser", 200, True, True),
        ("operator", 200, True, False),
        ("viewer", 200, True, False),
        ("other_tenant_staff", 200, False, True),
        ("no_membership", 403, False, False),
        ("anonymous", 302, False, False),
    ],
)
def test_the_key_list_shows_each_caller_only_their_tenants_keys(
    who: str, status: int, sees_mine: bool, sees_theirs: bool, tenant: Tenant, other_tenant: Tenant, keys: Any
) -> None:
    makers: dict[str, Callable[[], Client]] = {
        "superuser": superuser_client,
        "operator": lambda: operator_of(tenant),
        "viewer": lambda: viewer_of(tenant),
        "other_tenant_staff": lambda: operator_of(other_tenant),
        "no_membership": lambda: staff_client(None),
        "anonymous": Client,
    }
    client = makers[who]()
    response = client.get(KEYS)
    assert response.status_code == status
    page = response.content.decode()
    assert (keys["mine"][0].prefix in page) == sees_mine
    assert (keys["theirs"][0].prefix in page) == sees_theirs


def test_the_key_list_shows_prefix_name_tenant_role_last_use_and_state(tenant: Tenant, other_tenant: Tenant) -> None:
    named, _ = api_key_create(tenant=tenant, name="Android app")
    unnamed, _ = api_key_create(tenant=tenant, role=ApiKey.Role.PIPELINE)
    ApiKey.objects.filter(pk=unnamed.pk).update(revoked_at="2025-01-02T03:04:05Z", last_used_at="2025-01-01T00:00:00Z")
    page = viewer_of(tenant).get(KEYS).content.decode()
    for column in ("Prefix", "Name", "Tenant", "Role", "Created at", "Last used at", "State"):
        assert f">{column}<" in page or f">{column}</a>" in page, column
    assert named.prefix in page and "Android app" in page and "Client (uploads)" in page
    assert (
        unnamed.prefix in page and "(unnamed pipeline key)" in page and "Pipeline (reports processing status)" in page
    )
    assert "revoked" in page and "active" in page
    assert "Jan. 1, 2025" in page  # the last use


def test_a_viewer_reads_a_key_but_cannot_create_rename_or_revoke_it(tenant: Tenant, keys: Any) -> None:
    key, raw = keys["mine"]
    client = viewer_of(tenant)
    page = client.get(f"{KEYS}{key.pk}/change/")
    assert page.status_code == 200
    assert b"Android app" in page.content
    assert b'name="_save"' not in page.content and b"/revoke/" not in page.content
    assert client.get(f"{KEYS}add/").status_code == 403
    assert client.post(f"{KEYS}{key.pk}/change/", {"name": "renamed"}).status_code == 403
    assert client.get(f"{KEYS}{key.pk}/revoke/").status_code == 403
    assert client.post(f"{KEYS}{key.pk}/revoke/").status_code == 403
    client.post(KEYS, {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert (key.name, key.revoked_at) == ("Android app", None)
    assert status_with(raw) == 404


def test_another_tenants_key_does_not_exist_for_staff(tenant: Tenant, keys: Any) -> None:
    theirs, raw = keys["theirs"]
    client = operator_of(tenant)
    assert client.get(f"{KEYS}{theirs.pk}/change/").status_code == 404  # the same answer as a missing id
    assert client.get(f"{KEYS}999999/change/").status_code == 404
    assert client.get(f"{KEYS}{theirs.pk}/history/").status_code == 404
    assert client.get(f"{KEYS}{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"{KEYS}{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"{KEYS}{theirs.pk}/change/", {"name": "mine now"}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked_at) == ("Their app", None)
    assert status_with(raw) == 404


def test_the_hashed_key_is_never_shown(tenant: Tenant, keys: Any) -> None:
    key, _ = keys["mine"]
    for client in (viewer_of(tenant), operator_of(tenant), superuser_client()):
        for url in (KEYS, f"{KEYS}{key.pk}/change/"):
            page = client.get(url)
            assert page.status_code == 200
            assert key.hashed_key.encode() not in page.content
            assert b"hashed" not in page.content.lower()


# --- creating a key --------------------------------------------------------------------------
def test_the_add_form_offers_only_the_tenants_the_user_operates(tenant: Tenant, other_tenant: Tenant) -> None:
    client = staff_client(tenant, Membership.Role.OPERATOR, also=[(other_tenant, Membership.Role.VIEWER)])
    form = client.get(f"{KEYS}add/").context["adminform"].form
    assert [t.pk for t in form.fields["tenant"].queryset] == ["tenant_a"]
    assert set(form.fields) == {"tenant", "name", "role"}
    root_form = superuser_client().get(f"{KEYS}add/").context["adminform"].form
    assert [t.pk for t in root_form.fields["tenant"].queryset] == ["tenant_a", "tenant_b"]


def test_an_operator_cannot_create_a_key_for_another_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    client = staff_client(tenant, Membership.Role.OPERATOR, also=[(other_tenant, Membership.Role.VIEWER)])
    response = client.post(f"{KEYS}add/", {"tenant": "tenant_b", "name": "sneaky", "role": "client"})
    assert response.status_code == 200  # the form again, with an error on the tenant choice
    assert b"Select a valid choice" in response.content
    assert not ApiKey.objects.exists()


def test_an_operator_creates_a_key_and_sees_it_exactly_once(tenant: Tenant) -> None:
    client = operator_of(tenant)
    response = client.post(f"{KEYS}add/", {"tenant": "tenant_a", "name": "Pipeline prod", "role": "pipeline"})
    key = ApiKey.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{KEYS}{key.pk}/change/"
    page = client.get(response["Location"])
    shown = [str(m) for m in page.context["messages"]]
    raw = next(m for m in shown if "not shown again" in m).rsplit(": ", 1)[1]
    assert raw.startswith(key.prefix) and raw.encode() in page.content
    assert (key.tenant_id, key.name, key.role) == ("tenant_a", "Pipeline prod", "pipeline")
    assert raw not in (key.hashed_key, key.prefix, key.name)
    again = client.get(f"{KEYS}{key.pk}/change/")
    assert raw.encode() not in again.content  # shown once, never again
    assert key.prefix.encode() in again.content


def test_the_key_shown_on_creation_authenticates_against_the_api(tenant: Tenant) -> None:
    client = operator_of(tenant)
    response = client.post(f"{KEYS}add/", {"tenant": "tenant_a", "name": "Android app", "role": "client"}, follow=True)
    raw = next(str(m) for m in response.context["messages"] if "not shown again" in str(m)).rsplit(": ", 1)[1]
    assert status_with(raw) == 404  # accepted, and the tracking id is unknown: not a 401
    assert status_with(raw + "x") == 401
    assert ApiKey.objects.get().last_used_at is not None


def test_a_key_needs_a_name_in_the_admin(tenant: Tenant) -> None:
    response = operator_of(tenant).post(f"{KEYS}add/", {"tenant": "tenant_a", "name": "", "role": "client"})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not ApiKey.objects.exists()


# --- renaming and revoking -------------------------------------------------------------------
def test_an_operator_renames_a_key_but_cannot_move_it_or_change_its_role(
    tenant: Tenant, other_tenant: Tenant, keys: Any
) -> None:
    key, raw = keys["mine"]
    client = staff_client(tenant, Membership.Role.OPERATOR, also=[(other_tenant, Membership.Role.OPERATOR)])
    form = {"name": "iOS app", "tenant": "tenant_b", "role": "pipeline", "revoked_at": "2025-01-01", "prefix": "x"}
    assert client.post(f"{KEYS}{key.pk}/change/", form).status_code == 302
    key.refresh_from_db()
    assert (key.name, key.tenant_id, key.role, key.revoked_at) == ("iOS app", "tenant_a", "client", None)
    assert raw.startswith(key.prefix)
    assert status_with(raw) == 404


def test_an_operator_revokes_with_the_action_only_keys_of_tenants_they_operate(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    client = staff_client(tenant, Membership.Role.VIEWER, also=[(other_tenant, Membership.Role.OPERATOR)])
    viewed, viewed_raw = api_key_create(tenant=tenant, name="viewed")
    operated, operated_raw = api_key_create(tenant=other_tenant, name="operated")
    response = client.post(KEYS, {"action": "revoke", "_selected_action": [viewed.pk, operated.pk]}, follow=True)
    assert "1 API key(s) revoked." in [str(m) for m in response.context["messages"]]
    viewed.refresh_from_db()
    operated.refresh_from_db()
    assert viewed.revoked_at is None and status_with(viewed_raw) == 404
    assert operated.revoked_at is not None and status_with(operated_raw) == 401


def test_a_viewer_is_not_offered_the_revoke_action(tenant: Tenant, keys: Any) -> None:
    assert b'value="revoke"' not in viewer_of(tenant).get(KEYS).content
    assert b'value="revoke"' in operator_of(tenant).get(KEYS).content


def test_an_operator_revokes_a_key_from_its_page_after_confirming(tenant: Tenant, keys: Any) -> None:
    key, raw = keys["mine"]
    client = operator_of(tenant)
    page = client.get(f"{KEYS}{key.pk}/change/")
    assert f'href="{KEYS}{key.pk}/revoke/"'.encode() in page.content
    confirmation = client.get(f"{KEYS}{key.pk}/revoke/")
    assert confirmation.status_code == 200
    assert key.prefix.encode() in confirmation.content and b"Yes, revoke it" in confirmation.content
    key.refresh_from_db()
    assert key.revoked_at is None  # looking at the confirmation changes nothing
    response = client.post(f"{KEYS}{key.pk}/revoke/")
    assert response["Location"] == f"{KEYS}{key.pk}/change/"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert status_with(raw) == 401
    after = client.get(f"{KEYS}{key.pk}/change/")
    assert b"/revoke/" not in after.content and b"revoked" in after.content


def test_superusers_manage_every_tenants_keys(tenant: Tenant, other_tenant: Tenant, keys: Any) -> None:
    client = superuser_client()
    theirs, raw = keys["theirs"]
    response = client.post(f"{KEYS}add/", {"tenant": "tenant_b", "name": "made by root", "role": "client"})
    assert response.status_code == 302
    assert ApiKey.objects.filter(tenant=other_tenant, name="made by root").exists()
    client.post(f"{KEYS}{theirs.pk}/revoke/")
    assert status_with(raw) == 401


# --- tenants and memberships -----------------------------------------------------------------
def test_tenants_and_memberships_are_for_superusers_only_even_with_model_permissions(tenant: Tenant) -> None:
    client = operator_of(tenant)
    User.objects.get(username="operator").user_permissions.set(
        Permission.objects.filter(content_type__app_label="tenants")
    )
    membership = Membership.objects.get()
    for url in (
        "/admin/tenants/tenant/",
        "/admin/tenants/tenant/add/",
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        "/admin/tenants/membership/",
        "/admin/tenants/membership/add/",
        f"/admin/tenants/membership/{membership.pk}/change/",
    ):
        assert client.get(url).status_code == 403, url
    index = client.get("/admin/").content
    assert b"/admin/tenants/tenant/" not in index and b"/admin/tenants/membership/" not in index
    assert b"/admin/tenants/apikey/" in index
    root = superuser_client()
    assert root.get("/admin/tenants/tenant/").status_code == 200
    assert root.get(f"/admin/tenants/membership/{membership.pk}/change/").status_code == 200
