"""The upload page's sessions on the v1 API: staff signed in to the admin and artisans who opened
an upload link act through the same endpoints as API keys, with the same tenant rules, plus CSRF
on unsafe requests and, for a link, one artisan only."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tenants.models import Membership, Tenant, UploadLink
from tenants.services import upload_link_create, upload_link_revoke
from tests.conftest import put_bytes
from tests.helpers import AUDIO, PHOTO, assert_error, create_upload, initiate

pytestmark = pytest.mark.django_db


def staff_user(name: str, *memberships: tuple[Tenant, str], **flags: Any) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True, **flags)
    for tenant, role in memberships:
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def session_for(user: User) -> Client:
    """A browser signed in to the admin: CSRF is enforced, as it is for a real browser."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/upload/link")  # a page with a form hands out the CSRF cookie
    return client


def csrf(client: Client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


def open_link(tenant: Tenant, artisan_id: str = "art_1", **create: Any) -> Client:
    _, path = upload_link_create(tenant=tenant, artisan_id=artisan_id, **create)
    token = path.split("#", 1)[1]
    client = Client(enforce_csrf_checks=True)
    client.get("/upload/link")
    response = client.post("/upload/link", {"token": token, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 303 and response["Location"] == "/upload/", response.content
    return client


def post(client: Client, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(path, body, content_type="application/json", headers={**csrf(client), **headers})


def upload_pair(client: Client, artisan_id: str = "art_1", **headers: str) -> dict[str, str]:
    """Both files of a submission sent through the session, as the page sends them."""
    body = {"artisanId": artisan_id, "contentType": "image/jpeg", "fileSize": len(PHOTO)}
    photo = post(client, "/v1/catalog/upload/initiate", body, **headers).json()
    body = {
        "artisanId": artisan_id,
        "contentType": "audio/ogg",
        "fileSize": len(AUDIO),
        "trackingId": photo["trackingId"],
    }
    audio = post(client, "/v1/catalog/upload/initiate", body, **headers).json()
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    assert put_bytes(audio["uploadUrl"], AUDIO, audio["headers"]).status_code == 200
    return {"trackingId": photo["trackingId"], "photoKey": photo["key"], "audioKey": audio["key"]}


# --- staff -----------------------------------------------------------------------------------
def test_staff_operator_uploads_and_completes_through_their_session(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    client = session_for(staff_user("op", (tenant, Membership.Role.OPERATOR)))
    files = upload_pair(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/v1/catalog/upload/complete", {**files, "language": "hi"})
    assert response.status_code == 202, response.content
    status = client.get(f"/v1/catalog/status/{files['trackingId']}").json()
    assert status["stage"] == "queued"
    assert files["photoKey"].startswith("tenant_a/art_1/")
    submission = tenant.submissions.get()
    assert submission.events.filter(actor="staff:op").exists()


def test_session_request_without_csrf_token_is_refused(tenant: Tenant) -> None:
    client = session_for(staff_user("op", (tenant, Membership.Role.OPERATOR)))
    body = {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}
    response = client.post("/v1/catalog/uploads", body, content_type="application/json")
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert not tenant.submissions.exists()


def test_api_key_requests_need_no_csrf_token(api: Any) -> None:
    create_upload(api)  # APIClient without a session: keys are not cookies, so CSRF cannot apply


def test_staff_viewer_cannot_upload(tenant: Tenant) -> None:
    client = session_for(staff_user("viewer", (tenant, Membership.Role.VIEWER)))
    body = {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}
    assert_error(post(client, "/v1/catalog/uploads", body), 403, "tenant_mismatch")


def test_staff_of_two_tenants_names_the_tenant_per_request(tenant: Tenant, other_tenant: Tenant) -> None:
    user = staff_user("op2", (tenant, Membership.Role.OPERATOR), (other_tenant, Membership.Role.OPERATOR))
    client = session_for(user)
    body = {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}
    error = assert_error(post(client, "/v1/catalog/uploads", body), 403, "tenant_mismatch")
    assert error["details"]["tenants"] == ["tenant_a", "tenant_b"]
    created = post(client, "/v1/catalog/uploads", body, **{"X-Tenant-Id": "tenant_b"}).json()
    assert created["key"].startswith("tenant_b/")
    # The file is tenant_b's: asked for under tenant_a, it does not exist.
    response = client.get(f"/v1/catalog/uploads/{created['mediaId']}", headers={"X-Tenant-Id": "tenant_a"})
    assert_error(response, 404, "not_found")


def test_staff_cannot_name_a_tenant_they_do_not_operate(tenant: Tenant, other_tenant: Tenant) -> None:
    client = session_for(staff_user("op", (tenant, Membership.Role.OPERATOR), (other_tenant, Membership.Role.VIEWER)))
    body = {"artisanId": "art_1", "contentType": "image/jpeg", "fileSize": 10}
    assert_error(post(client, "/v1/catalog/uploads", body, **{"X-Tenant-Id": "tenant_b"}), 403, "tenant_mismatch")
    assert not other_tenant.submissions.exists()


def test_staff_session_sees_another_tenants_tracking_id_as_missing(tenant: Tenant, other_api: Any) -> None:
    theirs = initiate(other_api, content_type="image/jpeg", file_size=10)
    client = session_for(staff_user("op", (tenant, Membership.Role.OPERATOR)))
    assert_error(client.get(f"/v1/catalog/status/{theirs['trackingId']}"), 404, "not_found")
    assert_error(client.get(f"/v1/catalog/uploads/{theirs['mediaId']}"), 404, "not_found")


def test_superuser_uploads_for_any_tenant_they_name(tenant: Tenant, other_tenant: Tenant) -> None:
    client = session_for(staff_user("root", is_superuser=True))
    body = {"artisanId": "art_9", "contentType": "image/png", "fileSize": 10}
    created = post(client, "/v1/catalog/uploads", body, **{"X-Tenant-Id": "tenant_b"}).json()
    assert created["key"].startswith("tenant_b/art_9/")


def test_a_session_cannot_report_pipeline_events(tenant: Tenant, api: Any) -> None:
    created = initiate(api, content_type="image/jpeg", file_size=10)
    client = session_for(staff_user("op", (tenant, Membership.Role.OPERATOR)))
    response = post(client, f"/v1/catalog/status/{created['trackingId']}/events", {"eventId": "e1", "stage": "failed"})
    assert_error(response, 403, "permission_denied")


def test_no_session_and_no_key_is_401(db: None) -> None:
    response = Client().post("/v1/catalog/uploads", {}, content_type="application/json")
    assert_error(response, 401, "not_authenticated")


# --- upload links ----------------------------------------------------------------------------
def test_upload_link_session_uploads_and_completes_for_its_artisan(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    client = open_link(tenant, "art_7")
    files = upload_pair(client, "art_7")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, "/v1/catalog/upload/complete", {**files, "language": "ta"}).status_code == 202
    assert client.get(f"/v1/catalog/status/{files['trackingId']}").json()["stage"] == "queued"
    link = UploadLink.objects.get()
    assert tenant.submissions.get().events.filter(actor=f"link:{link.id}").exists()


def test_upload_link_session_cannot_start_files_for_another_artisan(tenant: Tenant) -> None:
    client = open_link(tenant, "art_7")
    body = {"artisanId": "art_8", "contentType": "image/jpeg", "fileSize": 10}
    assert_error(post(client, "/v1/catalog/uploads", body), 403, "artisan_mismatch")
    assert_error(post(client, "/v1/catalog/upload/initiate", body), 403, "artisan_mismatch")
    assert not tenant.submissions.exists()


def test_upload_link_session_sees_another_artisans_ids_as_missing(tenant: Tenant, api: Any) -> None:
    """Same tenant, other artisan: the link holder gets the answer a made-up id gets."""
    other = initiate(api, content_type="image/jpeg", file_size=len(PHOTO), artisan_id="art_8")
    client = open_link(tenant, "art_7")
    assert_error(client.get(f"/v1/catalog/status/{other['trackingId']}"), 404, "not_found")
    assert_error(client.get(f"/v1/catalog/uploads/{other['mediaId']}"), 404, "not_found")
    assert_error(client.delete(f"/v1/catalog/uploads/{other['mediaId']}", headers=csrf(client)), 404)
    body = {"artisanId": "art_7", "contentType": "audio/ogg", "fileSize": 10, "trackingId": other["trackingId"]}
    assert_error(post(client, "/v1/catalog/uploads", body), 404, "not_found")
    complete = {"trackingId": other["trackingId"], "photoKey": other["key"], "audioKey": "x", "language": "hi"}
    assert_error(post(client, "/v1/catalog/upload/complete", complete), 404, "not_found")
    assert tenant.submissions.get().media.count() == 1


def test_upload_link_session_cannot_reach_another_tenant(tenant: Tenant, other_api: Any) -> None:
    theirs = initiate(other_api, content_type="image/jpeg", file_size=10, artisan_id="art_7")
    client = open_link(tenant, "art_7")
    assert_error(client.get(f"/v1/catalog/status/{theirs['trackingId']}"), 404, "not_found")
    body = {"artisanId": "art_7", "contentType": "image/jpeg", "fileSize": 10}
    assert_error(post(client, "/v1/catalog/uploads", body, **{"X-Tenant-Id": "tenant_b"}), 403, "tenant_mismatch")


def test_revoking_a_link_ends_its_sessions_at_once(tenant: Tenant) -> None:
    client = open_link(tenant, "art_7")
    body = {"artisanId": "art_7", "contentType": "image/jpeg", "fileSize": 10}
    assert post(client, "/v1/catalog/uploads", body).status_code == 201
    upload_link_revoke(link=UploadLink.objects.get())
    assert_error(post(client, "/v1/catalog/uploads", body), 403, "link_revoked")
    page = client.get("/upload/")
    assert page.status_code == 410
    assert b"withdrawn" in page.content


def test_a_link_that_expires_while_open_stops_working(tenant: Tenant) -> None:
    client = open_link(tenant, "art_7")
    UploadLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get("/v1/catalog/status/trk_" + "0" * 24), 403, "link_expired")


def test_opening_a_link_replaces_a_staff_login_in_that_browser(tenant: Tenant, other_tenant: Tenant) -> None:
    user = staff_user("op", (other_tenant, Membership.Role.OPERATOR))
    client = session_for(user)
    before = client.cookies["sessionid"].value
    _, path = upload_link_create(tenant=tenant, artisan_id="art_7")
    response = client.post(
        "/upload/link", {"token": path.split("#")[1], "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    assert response.status_code == 303
    assert client.cookies["sessionid"].value != before  # a new session key: no fixation
    body = {"artisanId": "art_7", "contentType": "image/jpeg", "fileSize": 10}
    created = post(client, "/v1/catalog/uploads", body).json()
    assert created["key"].startswith("tenant_a/art_7/")
    assert client.get("/admin/").status_code == 302  # no longer signed in as staff
