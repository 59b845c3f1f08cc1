"""create_staff gives someone the admin for one tenant: a staff user (never a superuser), a
membership with a role, and a one-time link to choose a password.

The link tests need the password-set routes in portal/urls.py (`password_reset_confirm` and
`password_reset_complete` under /admin/password-set/)."""

from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tenants.management.commands.create_staff import Command
from tenants.models import Membership, Tenant
from tenants.services import staff_create
from uploads.errors import InvalidInput

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_staff", *args, stdout=out)
    return out.getvalue()


def roles_of(username: str) -> dict[str, str]:
    return dict(Membership.objects.filter(user__username=username).values_list("tenant_id", "role"))


# --- the service -----------------------------------------------------------------------------
def test_staff_create_makes_a_staff_user_without_a_password_and_its_membership(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    user, membership, created = staff_create(username="meena", tenant=tenant, role="operator", email="m@example.com")
    assert created
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser, user.is_active, user.email) == (True, False, True, "m@example.com")
    assert not user.has_usable_password()
    assert (membership.user, membership.tenant, membership.role) == (user, tenant, "operator")
    assert roles_of("meena") == {"tenant_a": "operator"}


def test_staff_create_updates_an_existing_user_who_keeps_their_password(tenant: Tenant, other_tenant: Tenant) -> None:
    existing = User.objects.create_user("meena", password="old-pw", email="old@example.com")
    Membership.objects.create(user=existing, tenant=tenant, role=Membership.Role.VIEWER)
    user, _, created = staff_create(username="meena", tenant=tenant, role="operator")
    assert not created and user.pk == existing.pk
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert user.check_password("old-pw")
    assert user.email == "old@example.com"  # no --email: the address stays
    assert roles_of("meena") == {"tenant_a": "operator"}
    staff_create(username="meena", tenant=other_tenant, role="viewer", email="new@example.com")
    assert roles_of("meena") == {"tenant_a": "operator", "tenant_b": "viewer"}
    assert User.objects.get(username="meena").email == "new@example.com"


def test_staff_create_refuses_an_unknown_role(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput, match="Unknown role 'admin'"):
        staff_create(username="meena", tenant=tenant, role="admin")
    assert not User.objects.exists()


def test_staff_create_refuses_a_bad_email_for_an_existing_user(tenant: Tenant) -> None:
    User.objects.create_user("meena", password="pw", email="m@example.com")
    with pytest.raises(InvalidInput, match="valid email"):
        staff_create(username="meena", tenant=tenant, role="viewer", email="not-an-address")
    assert User.objects.get(username="meena").email == "m@example.com"
    assert not Membership.objects.exists()


@pytest.mark.parametrize("flag", ["is_superuser", "inactive"])
def test_staff_create_leaves_superusers_and_deactivated_accounts_alone(tenant: Tenant, flag: str) -> None:
    user = User.objects.create_user(
        "boss", password="pw", is_superuser=flag == "is_superuser", is_active=flag != "inactive"
    )
    with pytest.raises(InvalidInput, match=r"superuser|deactivated"):
        staff_create(username="boss", tenant=tenant, role="operator")
    user.refresh_from_db()
    assert not user.is_staff
    assert not Membership.objects.exists()


# --- the command -----------------------------------------------------------------------------
def test_create_staff_prints_a_link_that_sets_the_password_once(tenant: Tenant, settings: Any) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    from django.test import Client

    output = run("meena", "--tenant", "tenant_a", "--role", "operator", "--email", "m@example.com")
    assert "Created staff user meena: operator of tenant_a" in output
    link = output.splitlines()[-1]
    assert link.startswith("https://portal.example.org/")
    browser = Client()
    form = browser.get(urlsplit(link).path, follow=True)
    assert form.status_code == 200
    assert b'name="new_password1"' in form.content
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": "a-long-new-pass-77", "new_password2": "a-long-new-pass-77"}
    )
    assert done.status_code == 302
    assert browser.get(done["Location"]).status_code == 200
    assert User.objects.get(username="meena").check_password("a-long-new-pass-77")
    again = Client().get(urlsplit(link).path, follow=True)
    assert b'name="new_password1"' not in again.content  # spent: the token was bound to the old password
    staff = Client()
    assert staff.login(username="meena", password="a-long-new-pass-77")
    assert staff.get("/admin/").status_code == 200


def test_create_staff_run_again_updates_the_role_and_says_so(tenant: Tenant) -> None:
    run("meena", "--tenant", "tenant_a", "--role", "viewer")
    output = run("meena", "--tenant", "tenant_a", "--role", "operator")
    assert "Updated staff user meena: operator of tenant_a" in output
    assert roles_of("meena") == {"tenant_a": "operator"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["meena", "--tenant", "nope", "--role", "viewer"], "No tenant 'nope'"),
        (["meena", "--tenant", "tenant_a", "--role", "admin"], "invalid choice: 'admin'"),
        (["meena", "--role", "viewer"], "--tenant"),
        (["bad name!", "--tenant", "tenant_a", "--role", "viewer"], "Enter a valid username"),
        (["meena", "--tenant", "tenant_a", "--role", "viewer", "--email", "not-an-address"], "valid email"),
    ],
)
def test_create_staff_refuses_bad_input_clearly(tenant: Tenant, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not User.objects.exists()


def test_create_staff_never_touches_a_superuser(tenant: Tenant) -> None:
    User.objects.create_superuser("root", password="pw")
    with pytest.raises(CommandError, match="superuser"):
        run("root", "--tenant", "tenant_a", "--role", "viewer")
    assert not Membership.objects.exists()


def test_create_staff_help_explains_the_roles_and_gives_an_example() -> None:
    text = Command().create_parser("manage.py", "create_staff").format_help()
    assert "viewer    reads" in text and "operator  also acts" in text
    assert "manage.py create_staff meena --tenant tenant_123 --role operator" in text
    for option in ("--tenant TENANT", "--role {viewer,operator}", "--email EMAIL"):
        assert option in text
