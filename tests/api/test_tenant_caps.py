"""Per-tenant caps on what is in flight: open uploads, the bytes they reserve, files per
submission. The file past a cap is a 409 quota_exceeded naming the cap, its value and the
current use; nothing is created; the other tenant is never affected."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create
from tests.api.openapi import assert_matches_schema, openapi_document
from tests.conftest import client_for, put_bytes
from tests.helpers import (
    MULTIPART_SIZE,
    assert_error,
    create_upload,
    initiate,
    media_row,
    row_counts,
    stored_files,
    superuser_client,
)
from uploads import services
from uploads.errors import QuotaExceeded
from uploads.models import MediaUpload, Submission
from uploads.services import sweep_expired
from uploads.services.caps import InFlight, tenant_in_flight

pytestmark = pytest.mark.django_db

PHOTO = {"artisanId": "art_1", "contentType": "image/jpeg"}
AUDIO = {"artisanId": "art_1", "contentType": "audio/ogg"}


def set_caps(tenant: Tenant, **caps: int | None) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(**caps)
    tenant.refresh_from_db()


def start(api: APIClient, body: dict[str, Any], **fields: Any) -> Any:
    return api.post("/v1/catalog/upload/initiate", {**body, **fields})


def assert_quota(response: Any, cap: str, limit: int, current: int, **more: Any) -> dict[str, Any]:
    error = assert_error(response, 409, "quota_exceeded")
    assert error["details"] == {"cap": cap, "limit": limit, "current": current, **more}
    return error


def test_open_upload_past_the_cap_is_409_and_the_other_tenant_is_unaffected(
    api: APIClient, tenant: Tenant, other_api: APIClient
) -> None:
    set_caps(tenant, max_open_uploads=2)
    for _ in range(2):
        assert start(api, PHOTO, fileSize=100).status_code == 201
    before = row_counts()
    refused = start(api, PHOTO, fileSize=100)
    assert_quota(refused, "maxOpenUploads", 2, 2)
    assert_matches_schema(refused, "/v1/catalog/upload/initiate", "post")
    assert row_counts() == before
    assert [start(other_api, PHOTO, fileSize=100).status_code for _ in range(3)] == [201] * 3


def test_schema_documents_quota_exceeded_where_files_start() -> None:
    for path in ("/v1/catalog/upload/initiate", "/v1/catalog/uploads"):
        assert "quota_exceeded" in openapi_document()["paths"][path]["post"]["responses"]["409"]["description"]


def test_finished_aborted_and_expired_uploads_are_not_open(api: APIClient, tenant: Tenant) -> None:
    set_caps(tenant, max_open_uploads=1)
    first = initiate(api, content_type="image/jpeg", file_size=10)
    assert put_bytes(first["uploadUrl"], b"\xff\xd8\xff" + b"j" * 7, first["headers"]).status_code in (200, 204)
    assert api.post(f"/v1/catalog/uploads/{first['mediaId']}/complete").status_code == 200
    second = start(api, PHOTO, fileSize=10).json()  # the finished one no longer counts
    assert_quota(start(api, PHOTO, fileSize=10), "maxOpenUploads", 1, 1)

    assert api.delete(f"/v1/catalog/uploads/{second['mediaId']}").status_code == 200
    third = start(api, PHOTO, fileSize=10).json()  # nor does the aborted one
    MediaUpload.objects.filter(media_id=third["mediaId"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert start(api, PHOTO, fileSize=10).status_code == 201  # nor one past its expiry, swept or not


def test_pending_file_of_an_expired_submission_counts_until_the_sweep_closes_it(api: APIClient, tenant: Tenant) -> None:
    set_caps(tenant, max_open_uploads=1)
    first = start(api, PHOTO, fileSize=10).json()
    Submission.objects.filter(tracking_id=first["trackingId"]).update(
        created_at=timezone.now() - timedelta(seconds=settings.UPLOADS_SUBMISSION_TTL_SECONDS + 1)
    )
    assert_quota(start(api, PHOTO, fileSize=10), "maxOpenUploads", 1, 1)
    sweep_expired(dry_run=False)
    assert start(api, PHOTO, fileSize=10).status_code == 201


def test_another_tenants_open_uploads_do_not_count(api: APIClient, tenant: Tenant, other_tenant: Tenant) -> None:
    # tenant_a's keys start "tenant_a/"; a tenant whose id extends it shares no prefix with it.
    longer = Tenant.objects.create(id="tenant_a2", name="Tenant A2", max_open_uploads=1)
    assert start(client_for(longer), PHOTO, fileSize=10).status_code == 201
    set_caps(tenant, max_open_uploads=1)
    assert start(api, PHOTO, fileSize=10).status_code == 201
    assert tenant_in_flight(tenant=tenant).open_uploads == 1
    assert tenant_in_flight(tenant=longer).open_uploads == 1


# Tenant ids whose keys sort right around "tenant_a/": before it ('-' < '/'), at the first key
# past its prefix ("tenant_a0"), after it, and shorter ones of which it is an extension.
NEIGHBOURS = ("tenant_a-eu", "tenant_a0", "tenant_a_b", "tenant_", "tenant", "tenant_b")


def test_the_open_uploads_cap_counts_the_tenants_own_files_and_no_neighbours(api: APIClient, tenant: Tenant) -> None:
    for tenant_id in NEIGHBOURS:
        neighbour = Tenant.objects.create(id=tenant_id, name=tenant_id)
        submission = Submission.objects.create(tenant=neighbour, artisan_id="art_1")
        media_row(submission, "photo")
        media_row(submission, "audio")
    set_caps(tenant, max_open_uploads=3)
    assert start(api, PHOTO, fileSize=10).status_code == 201
    assert start(api, AUDIO, fileSize=20, artisanId="art_2").status_code == 201
    assert start(api, PHOTO, fileSize=30).status_code == 201
    assert_quota(start(api, PHOTO, fileSize=10), "maxOpenUploads", 3, 3)
    assert tenant_in_flight(tenant=tenant) == InFlight(open_uploads=3, reserved_bytes=60)
    for tenant_id in NEIGHBOURS:
        assert tenant_in_flight(tenant=Tenant.objects.get(pk=tenant_id)) == InFlight(
            open_uploads=2, reserved_bytes=10_000
        )


def test_reserved_bytes_count_declared_sizes_up_to_the_cap_exactly(api: APIClient, tenant: Tenant) -> None:
    set_caps(tenant, max_reserved_bytes=3000)
    assert start(api, PHOTO, fileSize=2000).status_code == 201
    assert_quota(start(api, AUDIO, fileSize=1001), "maxReservedBytes", 3000, 2000, requested=1001)
    assert start(api, AUDIO, fileSize=1000).status_code == 201


def test_file_of_undeclared_size_reserves_its_kinds_limit(api: APIClient, tenant: Tenant) -> None:
    set_caps(tenant, max_photo_bytes=1000, max_audio_bytes=5000, max_reserved_bytes=6500)
    assert start(api, PHOTO).status_code == 201  # no fileSize: up to 1000 bytes may come
    assert start(api, AUDIO).status_code == 201  # up to 5000
    assert tenant_in_flight(tenant=tenant).reserved_bytes == 6000
    error = assert_quota(start(api, AUDIO), "maxReservedBytes", 6500, 6000, requested=5000)
    assert "declare the file's size" in error["message"]
    assert start(api, AUDIO, fileSize=500).status_code == 201


def test_files_per_submission_past_the_cap_is_409_and_an_aborted_file_frees_its_place(
    api: APIClient, tenant: Tenant
) -> None:
    set_caps(tenant, max_files_per_submission=2)
    photo = initiate(api, content_type="image/jpeg", file_size=100)
    tracking_id = photo["trackingId"]
    audio = initiate(api, content_type="audio/ogg", file_size=100, tracking_id=tracking_id)
    refused = start(api, PHOTO, fileSize=100, trackingId=tracking_id)
    assert_quota(refused, "maxFilesPerSubmission", 2, 2, trackingId=tracking_id)
    assert start(api, PHOTO, fileSize=100).status_code == 201  # a new submission is fine

    assert api.delete(f"/v1/catalog/uploads/{audio['mediaId']}").status_code == 200
    assert start(api, AUDIO, fileSize=100, trackingId=tracking_id).status_code == 201


def test_portal_defaults_apply_where_the_tenant_sets_none_and_zero_means_none(
    api: APIClient, tenant: Tenant, settings: Any
) -> None:
    settings.UPLOADS_DEFAULT_MAX_OPEN_UPLOADS = 1
    assert start(api, PHOTO, fileSize=10).status_code == 201
    assert_quota(start(api, PHOTO, fileSize=10), "maxOpenUploads", 1, 1)
    set_caps(tenant, max_open_uploads=5)  # the tenant's own cap wins over the default
    assert start(api, PHOTO, fileSize=10).status_code == 201
    set_caps(tenant, max_open_uploads=0)
    assert_quota(start(api, PHOTO, fileSize=10), "maxOpenUploads", 0, 2)


def test_refused_multipart_upload_leaves_nothing_at_storage(api: APIClient, tenant: Tenant) -> None:
    set_caps(tenant, max_open_uploads=0)
    body = {**AUDIO, "fileSize": MULTIPART_SIZE}
    assert_quota(api.post("/v1/catalog/uploads", body), "maxOpenUploads", 0, 0)
    assert stored_files() == []
    assert not Submission.objects.exists()


def test_uppy_uploads_obey_the_same_caps(tenant: Tenant) -> None:
    set_caps(tenant, max_open_uploads=1)

    def start_uppy(multipart: bool) -> None:
        services.media_initiate_uppy(
            tenant=tenant,
            session_artisan_id="art_1",
            content_type="image/jpeg",
            meta={},
            multipart=multipart,
            actor="test",
        )

    start_uppy(multipart=False)
    with pytest.raises(QuotaExceeded) as refused:
        start_uppy(multipart=True)
    assert refused.value.details["cap"] == "maxOpenUploads"


def test_staff_set_a_tenants_caps_in_the_admin_and_see_what_is_in_flight(api: APIClient, tenant: Tenant) -> None:
    create_upload(api, file_size=MULTIPART_SIZE)
    admin = superuser_client()
    page = admin.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Empty: the portal&#x27;s default, 1,000." in text or "Empty: the portal's default, 1,000." in text
    assert f"1 open uploads reserving {MULTIPART_SIZE:,} bytes" in text
    form = {"id": tenant.pk, "name": tenant.name, "is_active": "on", "max_open_uploads": "7"}
    form |= {"max_reserved_bytes": "", "max_files_per_submission": "3", "max_photo_bytes": "", "max_audio_bytes": ""}
    saved = admin.post(f"/admin/tenants/tenant/{tenant.pk}/change/", form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    tenant.refresh_from_db()
    assert (tenant.max_open_uploads, tenant.max_reserved_bytes, tenant.max_files_per_submission) == (7, None, 3)


# --- concurrency --------------------------------------------------------------------------------
def _at_once(count: int, request: Any) -> list[int]:
    """`count` threads send `request(i)` together; their statuses."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            statuses.append(request(i).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(statuses)


def _clients(tenant: Tenant, count: int) -> list[APIClient]:
    clients = []
    for _ in range(count):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=tenant)[1]}")
        clients.append(client)
    return clients


@pytest.mark.django_db(transaction=True)
def test_concurrent_initiates_never_pass_the_open_uploads_cap(tenant: Tenant) -> None:
    set_caps(tenant, max_open_uploads=3)
    clients = _clients(tenant, 10)
    statuses = _at_once(10, lambda i: start(clients[i], PHOTO, fileSize=100))
    assert statuses == [201] * 3 + [409] * 7
    assert tenant_in_flight(tenant=tenant).open_uploads == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_additions_to_one_submission_never_pass_its_files_cap(tenant: Tenant) -> None:
    set_caps(tenant, max_files_per_submission=3)
    clients = _clients(tenant, 8)
    tracking_id = initiate(clients[0], content_type="image/jpeg", file_size=100)["trackingId"]
    statuses = _at_once(8, lambda i: start(clients[i], AUDIO, fileSize=100, trackingId=tracking_id))
    assert statuses == [201] * 2 + [409] * 6
    assert MediaUpload.objects.filter(submission__tracking_id=tracking_id).count() == 3


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's plan; PostgreSQL's is in tests/unit/test_query_plans.py"
)
def test_on_sqlite_the_open_uploads_count_reads_the_tenants_by_their_index(tenant: Tenant) -> None:
    sent: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        tenant_in_flight(tenant=tenant)
    [(sql, params)] = sent
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)  # the statement as sent, its parameters bound
        plan = [row[-1] for row in cursor.fetchall()]
    assert plan == ["SEARCH uploads_mediaupload USING INDEX uploads_media_open_by_tenant (<expr>=? AND expires_at>?)"]
