"""Staff see their own tenants' uploads in the admin, and nothing of any other tenant's."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tenants.models import Membership, Tenant, UploadLink
from uploads.models import OutboxMessage, Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(tenant: Tenant) -> Client:
    user = User.objects.create_user("staff_a", password="pw", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


def test_staff_sees_only_their_tenants_submissions(staff_client: Client, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="a1")
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="b1")
    page = staff_client.get("/admin/uploads/submission/")
    assert page.status_code == 200
    assert mine.tracking_id in page.content.decode()
    assert theirs.tracking_id not in page.content.decode()
    assert "tenant_b" not in page.content.decode()


def test_staff_cannot_open_another_tenants_submission(staff_client: Client, other_tenant: Tenant) -> None:
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="b1")
    response = staff_client.get(f"/admin/uploads/submission/{theirs.pk}/change/")
    assert response.status_code == 404  # the same answer as for a missing id
    missing = staff_client.get("/admin/uploads/submission/999999/change/")
    assert missing.status_code == 404


def test_staff_can_open_their_tenants_submission_read_only(staff_client: Client, tenant: Tenant) -> None:
    mine = Submission.objects.create(tenant=tenant, artisan_id="a1")
    response = staff_client.get(f"/admin/uploads/submission/{mine.pk}/change/")
    assert response.status_code == 200
    assert b'name="_save"' not in response.content


def test_staff_without_membership_sees_no_uploads(db: Any) -> None:
    user = User.objects.create_user("loner", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/uploads/submission/").status_code == 403


@pytest.mark.parametrize("model", ["outboxmessage", "uploadlink"])
def test_another_tenants_row_of_any_scoped_model_is_404_like_a_missing_one(
    staff_client: Client, other_tenant: Tenant, model: str
) -> None:
    theirs = Submission.objects.create(tenant=other_tenant, artisan_id="b1")
    if model == "outboxmessage":
        row: Any = OutboxMessage.objects.create(dedup_key="k", topic="status", submission=theirs, body={})
        app = "uploads"
    else:
        row = UploadLink.objects.create(tenant=other_tenant, artisan_id="b1", expires_at=timezone.now())
        app = "tenants"
    for view in ("change", "history"):
        assert staff_client.get(f"/admin/{app}/{model}/{row.pk}/{view}/").status_code == 404
