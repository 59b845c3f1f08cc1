"""Calling the portal's Companion routes (/uppy/s3/) the way stock Uppy does: plain fetch with
the session cookie and the page's Origin, no CSRF token. Shared by the route, S3 and browser tests."""

import json
from typing import Any
from urllib.parse import urlsplit

import requests
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tenants.models import Membership, Tenant
from tenants.services import upload_link_create
from tests.conftest import put_bytes

ORIGIN = "http://testserver"


# --- who calls ---------------------------------------------------------------------------------
def staff_client(*tenants: Tenant, username: str = "operator", **headers: str) -> Client:
    """A browser of a staff operator of `tenants`, sending what fetch sends: its Origin."""
    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)
    for tenant in tenants:
        Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.OPERATOR)
    client = Client(headers={"Origin": ORIGIN, **headers})
    client.force_login(user)
    return client


def link_client(tenant: Tenant, artisan_id: str) -> Client:
    """A browser that opened an upload link for `artisan_id`, as the link page does."""
    _, path = upload_link_create(tenant=tenant, artisan_id=artisan_id)
    client = Client(headers={"Origin": ORIGIN})
    response = client.post("/upload/link", {"token": path.split("#", 1)[1]})
    assert response.status_code == 303, response.content
    return client


# --- calling the routes as Uppy does ------------------------------------------------------------
def params(client: Client, content_type: str = "image/jpeg", **meta: str) -> Any:
    query = {"filename": "../../holiday photo.php", "type": content_type}
    query.update({f"metadata[{k}]": v for k, v in meta.items()})
    return client.get("/uppy/s3/params", query)


def signed_form(client: Client, content_type: str = "image/jpeg", **meta: str) -> dict[str, Any]:
    response = params(client, content_type, **{"artisanId": "art_1", **meta})
    assert response.status_code == 200, response.content
    return dict(response.json())


def post_form(form: dict[str, Any], data: bytes, content_type: str = "image/jpeg", **headers: str) -> Any:
    """POSTs the form the way Uppy does: the signed fields, then the file, last."""
    parts = urlsplit(form["url"])
    if parts.netloc == "testserver":
        body = {**form["fields"], "file": SimpleUploadedFile("blob", data, content_type=content_type)}
        return Client().post(parts.path, body, headers=headers)
    return requests.post(form["url"], data=form["fields"], files={"file": ("blob", data, content_type)}, timeout=30)


def create(client: Client, content_type: str = "audio/ogg", **meta: Any) -> Any:
    body = {"filename": "voice note.ogg", "type": content_type, "metadata": {"name": "voice note.ogg", **meta}}
    return client.post("/uppy/s3/multipart", json.dumps(body), content_type="application/json")


def created(client: Client, content_type: str = "audio/ogg", **meta: Any) -> dict[str, str]:
    response = create(client, content_type, **{"artisanId": "art_1", **meta})
    assert response.status_code == 200, response.content
    return dict(response.json())


def sign(client: Client, upload: dict[str, str], number: int | str) -> Any:
    return client.get(f"/uppy/s3/multipart/{upload['uploadId']}/{number}", {"key": upload["key"]})


def put_part(client: Client, upload: dict[str, str], number: int, data: bytes) -> str:
    response = sign(client, upload, number)
    assert response.status_code == 200, response.content
    stored = put_bytes(response.json()["url"], data)
    assert stored.status_code == 200, stored.content
    return str(stored.headers["ETag"])


def list_parts(client: Client, upload: dict[str, str]) -> Any:
    return client.get(f"/uppy/s3/multipart/{upload['uploadId']}", {"key": upload["key"]})


def complete(client: Client, upload: dict[str, str], parts: list[tuple[int, str]]) -> Any:
    body = {"parts": [{"PartNumber": n, "ETag": etag.strip('"')} for n, etag in parts]}  # Uppy strips the quotes
    return client.post(
        f"/uppy/s3/multipart/{upload['uploadId']}/complete?key={upload['key']}",
        json.dumps(body),
        content_type="application/json",
    )


def abort(client: Client, upload: dict[str, str]) -> Any:
    return client.delete(f"/uppy/s3/multipart/{upload['uploadId']}?key={upload['key']}")


def upload_parts(client: Client, upload: dict[str, str], chunks: list[bytes]) -> list[tuple[int, str]]:
    return [(n, put_part(client, upload, n, chunk)) for n, chunk in enumerate(chunks, start=1)]


def v1_complete(client: Client, tracking_id: str, photo_key: str, audio_key: str) -> Any:
    body = {"trackingId": tracking_id, "photoKey": photo_key, "audioKey": audio_key, "language": "hi"}
    return client.post("/v1/catalog/upload/complete", body, content_type="application/json")


def tracking_of(key: str) -> str:
    return key.split("/")[2]
