"""Upload links: staff make them (command or admin), artisans open them, and a link that expired
or was revoked gets a page saying so. The secret never travels in a request line."""

from datetime import timedelta
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tenants.models import Membership, Tenant, UploadLink
from tenants.services import upload_link_create

pytestmark = pytest.mark.django_db


def open_with(client: Client, token: str) -> Any:
    client.get("/upload/link")
    return client.post("/upload/link", {"token": token, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def token_of(path_or_url: str) -> str:
    return path_or_url.split("#", 1)[1]


def test_create_upload_link_prints_a_url_whose_secret_is_in_the_fragment(tenant: Tenant) -> None:
    out = StringIO()
    call_command(
        "create_upload_link", "tenant_a", "art_1", "--days", "3", "--base-url", "https://up.example", stdout=out
    )
    url = out.getvalue().splitlines()[-1]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "up.example", "/upload/link")
    assert parts.fragment and not parts.query  # browsers never send the fragment: it stays out of logs
    link = UploadLink.objects.get()
    assert (link.tenant_id, link.artisan_id) == ("tenant_a", "art_1")
    assert timedelta(days=3) - timedelta(minutes=1) < link.expires_at - timezone.now() <= timedelta(days=3)
    response = open_with(Client(enforce_csrf_checks=True), parts.fragment)
    assert response.status_code == 303 and response["Location"] == "/upload/"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant_zz", "art_1"], "No active tenant"),
        (["tenant_a", "../etc"], "artisanId"),
        (["tenant_a", "art_1", "--days", "0"], "days"),
        (["tenant_a", "art_1", "--days", "91"], "days"),
    ],
)
def test_create_upload_link_refuses_bad_input_clearly(tenant: Tenant, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("create_upload_link", *args, stdout=StringIO())
    assert not UploadLink.objects.exists()


def test_the_link_page_carries_no_secret_and_posts_the_fragment(tenant: Tenant) -> None:
    page = Client().get("/upload/link")
    assert page.status_code == 200
    assert b'name="token"' in page.content and b"link-open.js" in page.content
    assert page["Cache-Control"].startswith("max-age=0")


def test_an_expired_link_gets_a_page_that_says_so(tenant: Tenant) -> None:
    link, path = upload_link_create(tenant=tenant, artisan_id="art_1")
    UploadLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = Client()
    response = open_with(client, token_of(path))
    assert response.status_code == 410
    assert b"This upload link has expired" in response.content
    assert "sessionid" not in client.cookies or not client.session.get("upload_link_id")


def test_a_revoked_link_gets_a_page_that_says_so(tenant: Tenant) -> None:
    link, path = upload_link_create(tenant=tenant, artisan_id="art_1")
    link.revoked_at = timezone.now()
    link.save(update_fields=["revoked_at"])
    response = open_with(Client(), token_of(path))
    assert response.status_code == 410
    assert b"withdrawn" in response.content


@pytest.mark.parametrize("token", ["", "garbage", "lnk_0:forged:signature"])
def test_a_forged_or_truncated_link_gets_a_page_not_a_stack_trace(tenant: Tenant, token: str) -> None:
    response = open_with(Client(), token)
    assert response.status_code == 400
    assert b"This upload link does not work" in response.content


def test_a_link_for_a_deactivated_tenant_does_not_open(tenant: Tenant) -> None:
    _, path = upload_link_create(tenant=tenant, artisan_id="art_1")
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    assert open_with(Client(), token_of(path)).status_code == 410


def test_a_link_records_when_it_was_last_used(tenant: Tenant) -> None:
    link, path = upload_link_create(tenant=tenant, artisan_id="art_1")
    assert link.last_used_at is None
    open_with(Client(), token_of(path))
    link.refresh_from_db()
    assert link.last_used_at is not None


def test_the_upload_page_sends_strangers_to_the_login(db: None) -> None:
    response = Client().get("/upload/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/upload/"


def test_the_upload_page_tells_staff_without_operator_role_why_they_cannot_upload(tenant: Tenant) -> None:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    response = client.get("/upload/")
    assert response.status_code == 403
    assert b"operator role" in response.content


# --- the admin -------------------------------------------------------------------------------
def staff(tenant: Tenant, role: str, name: str = "op") -> Client:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_an_operator_creates_a_link_in_the_admin_and_sees_its_url_once(tenant: Tenant) -> None:
    client = staff(tenant, Membership.Role.OPERATOR)
    form = {"tenant": "tenant_a", "artisan_id": "art_5", "note": "WhatsApp to Meena", "days": "2"}
    response = client.post("/admin/tenants/uploadlink/add/", form, follow=True)
    assert response.status_code == 200
    link = UploadLink.objects.get()
    assert (link.artisan_id, link.note, link.created_by) == (
        "art_5",
        "WhatsApp to Meena",
        User.objects.get(username="op"),
    )
    shown = [str(m) for m in response.context["messages"]]
    url = next(m for m in shown if "/upload/link#" in m).split(": ", 1)[1]
    assert urlsplit(url).netloc == "testserver"
    assert open_with(Client(), urlsplit(url).fragment).status_code == 303
    again = client.get(f"/admin/tenants/uploadlink/{link.pk}/change/")
    assert urlsplit(url).fragment.encode() not in again.content  # shown once, never again


def test_an_operator_cannot_create_a_link_for_another_tenant(tenant: Tenant, other_tenant: Tenant) -> None:
    client = staff(tenant, Membership.Role.OPERATOR)
    form = {"tenant": "tenant_b", "artisan_id": "art_5", "note": "", "days": "2"}
    response = client.post("/admin/tenants/uploadlink/add/", form)
    assert response.status_code == 200  # the form again, with an error on the tenant choice
    assert b"Select a valid choice" in response.content
    assert not UploadLink.objects.exists()


def test_a_bad_artisan_id_in_the_admin_form_is_a_form_error(tenant: Tenant) -> None:
    client = staff(tenant, Membership.Role.OPERATOR)
    form = {"tenant": "tenant_a", "artisan_id": "../etc", "note": "", "days": "2"}
    response = client.post("/admin/tenants/uploadlink/add/", form)
    assert response.status_code == 200
    assert b"artisanId must be 1-64 letters" in response.content
    assert not UploadLink.objects.exists()


def test_a_viewer_cannot_create_links(tenant: Tenant) -> None:
    client = staff(tenant, Membership.Role.VIEWER)
    assert client.get("/admin/tenants/uploadlink/add/").status_code == 403


def test_an_operator_revokes_links_of_their_tenant_only(tenant: Tenant, other_tenant: Tenant) -> None:
    mine, _ = upload_link_create(tenant=tenant, artisan_id="art_1")
    theirs, _ = upload_link_create(tenant=other_tenant, artisan_id="art_1")
    client = staff(tenant, Membership.Role.OPERATOR)
    listing = client.get("/admin/tenants/uploadlink/")
    assert mine.pk.encode() in listing.content and theirs.pk.encode() not in listing.content
    client.post("/admin/tenants/uploadlink/", {"action": "revoke", "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None
    assert theirs.revoked_at is None


def test_a_viewer_of_one_tenant_and_operator_of_another_revokes_only_the_second(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    user = User.objects.create_user("mixed", password="pw", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.VIEWER)
    Membership.objects.create(user=user, tenant=other_tenant, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    viewed, _ = upload_link_create(tenant=tenant, artisan_id="art_1")
    operated, _ = upload_link_create(tenant=other_tenant, artisan_id="art_1")
    client.post("/admin/tenants/uploadlink/", {"action": "revoke", "_selected_action": [viewed.pk, operated.pk]})
    viewed.refresh_from_db()
    operated.refresh_from_db()
    assert viewed.revoked_at is None
    assert operated.revoked_at is not None


def test_the_upload_page_tells_the_script_each_tenants_own_size_limits(tenant: Tenant, other_tenant: Tenant) -> None:
    Tenant.objects.filter(pk=other_tenant.pk).update(max_photo_bytes=1234)
    user = User.objects.create_user("op2", password="pw", is_staff=True)
    for each in (tenant, other_tenant):
        Membership.objects.create(user=user, tenant=each, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    config = client.get("/upload/").context["config"]
    assert config["tenants"] == ["tenant_a", "tenant_b"]
    assert config["maxBytes"]["tenant_b"]["photo"] == 1234
    assert config["maxBytes"]["tenant_a"]["photo"] == 50 * 1024 * 1024
