"""The DynamoDB mirror's writes (moto in-process): each state change of a submission or a file
becomes one conditional UpdateItem of the attributes the portal owns, never backwards, never
touching the pipeline's attributes."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import Mirror
from tests.helpers import PART, complete_body, create_upload, put_part, sign_parts, split, uploaded_submission
from uploads.dynamodb import item_size, update_if_newer
from uploads.models import MediaUpload, OutboxMessage, Submission
from uploads.services import media_initiate, media_record_part, outbox_relay
from uploads.services.mirror import (
    CATALOG_ATTRIBUTES,
    UPLOAD_STATE_ATTRIBUTES,
    catalog_item,
    upload_state_item,
)

pytestmark = pytest.mark.django_db


def mirror_rows() -> int:
    return OutboxMessage.objects.filter(topic=OutboxMessage.Topic.MIRROR).count()


def owned(item: dict[str, Any] | None, attributes: tuple[str, ...]) -> dict[str, Any]:
    assert item is not None
    return {name: item.get(name) for name in attributes}


def test_with_the_mirror_off_no_mirror_write_is_owed(api: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        submission = uploaded_submission(api)
        assert api.post("/v1/catalog/upload/complete", complete_body(submission), format="json").status_code == 202
    assert mirror_rows() == 0


def test_a_completed_submission_and_its_files_are_mirrored_as_django_holds_them(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sent = uploaded_submission(api)
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    outbox_relay()

    submission = Submission.objects.get(tracking_id=sent["trackingId"])
    assert submission.stage == "queued"
    record = mirror.catalog(submission.tracking_id)
    assert owned(record, CATALOG_ATTRIBUTES) == catalog_item(submission)
    assert record is not None and record["photoKey"].endswith(submission.photo_key)
    items = mirror.upload_state(submission.tracking_id)
    assert {media_id: owned(item, UPLOAD_STATE_ATTRIBUTES) for media_id, item in items.items()} == {
        media.media_id: upload_state_item(media) for media in submission.media.all()
    }
    assert {item["status"] for item in items.values()} == {"uploaded"}


def test_each_state_change_is_one_dynamodb_write(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: four 64 KiB parts
    with django_capture_on_commit_callbacks(execute=True):
        created = create_upload(api, file_size=len(data), part_size=PART)
        media = MediaUpload.objects.get(media_id=created["mediaId"])
        chunks = split(data, created["partSize"])
        signed = sign_parts(api, created["mediaId"], list(range(1, len(chunks) + 1)))
        for number, chunk in enumerate(chunks, start=1):
            etag = put_part(signed[number], chunk).headers["ETag"]
            response = api.put(
                f"/v1/catalog/uploads/{created['mediaId']}/parts/{number}", {"size": len(chunk), "etag": etag}
            )
            assert response.status_code == 200, response.content
        # The same record again is no change: no version, no write.
        api.put(f"/v1/catalog/uploads/{created['mediaId']}/parts/1", {"size": len(chunks[0]), "etag": etag})
    outbox_relay()
    media.refresh_from_db()
    media.submission.refresh_from_db()
    # Changes: the submission's creation and its move to uploading; the file's creation and each part.
    submission_changes = media.submission.version
    file_changes = media.version
    assert (submission_changes, file_changes) == (2, 1 + len(chunks))
    assert mirror_rows() == submission_changes + file_changes
    assert len(mirror.writes) == submission_changes + file_changes
    item = mirror.upload_state(media.submission.tracking_id)[media.media_id]
    assert (item["completedParts"], item["bytesUploaded"], item["version"]) == (len(chunks), len(data), media.version)


def test_an_older_state_delivered_late_never_overwrites_a_newer_one(mirror: Mirror) -> None:
    key = {"trackingId": "trk_late"}
    assert update_if_newer(table=mirror.tables.catalog, key=key, attributes={"stage": "queued", "version": 5})
    assert not update_if_newer(table=mirror.tables.catalog, key=key, attributes={"stage": "uploaded", "version": 4})
    assert not update_if_newer(table=mirror.tables.catalog, key=key, attributes={"stage": "queued", "version": 5})
    assert mirror.catalog("trk_late") == {"trackingId": "trk_late", "stage": "queued", "version": 5}


def test_a_failed_condition_is_delivered_not_retried(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # delivery not started: the relay sends it
        created = create_upload(api)
    tracking_id = created["trackingId"]
    # A newer state is already there (another relay got there first).
    update_if_newer(table=mirror.tables.catalog, key={"trackingId": tracking_id}, attributes={"version": 99})
    row = OutboxMessage.objects.get(dedup_key=f"mirror:{tracking_id}:v1")
    outbox_relay()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    assert mirror.catalog(tracking_id) == {"trackingId": tracking_id, "version": 99}


def test_attributes_the_pipeline_wrote_survive_later_mirror_writes(
    api: APIClient, mirror: Mirror, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sent = uploaded_submission(api)
        mirror.pipeline_writes(sent["trackingId"], reviewer="qa-7", catalogId="cat_9")
        assert api.post("/v1/catalog/upload/complete", complete_body(sent), format="json").status_code == 202
    outbox_relay()
    record = mirror.catalog(sent["trackingId"])
    assert record is not None
    assert (record["reviewer"], record["catalogId"], record["stage"]) == ("qa-7", "cat_9", "queued")


def test_a_ten_thousand_part_uploads_item_stays_under_4_kb(mirror: Mirror, tenant: Any) -> None:
    from tests.helpers import media_row

    submission = Submission.objects.create(tenant=tenant, artisan_id="art_1")
    media = media_row(submission, "audio", part_count=10_000)
    MediaUpload.objects.filter(pk=media.pk).update(
        parts_recorded=10_000, bytes_recorded=10_000 * 64 * 1024, version=10_001
    )
    media.refresh_from_db()
    item = {"trackingId": submission.tracking_id, "mediaId": media.media_id, **upload_state_item(media)}
    assert item["completedParts"] == 10_000
    assert item_size(item) < 4096


@pytest.mark.django_db(transaction=True)
def test_parts_recorded_concurrently_add_up_in_the_counters_and_versions(api: APIClient) -> None:
    created = create_upload(api, file_size=16 * PART, part_size=PART)
    media = MediaUpload.objects.get(media_id=created["mediaId"])

    def record(number: int) -> None:
        try:
            media_record_part(media=media, part_number=number, size=PART, etag=f'"{number:032x}"', actor="test")
            # A client re-sending the part records it again with the new ETag: replaced, not added.
            media_record_part(media=media, part_number=number, size=PART, etag=f'"{number + 100:032x}"', actor="test")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(record, range(1, 17)))
    media.refresh_from_db()
    assert (media.parts_recorded, media.bytes_recorded, media.version) == (16, 16 * PART, 1 + 32)


def test_a_part_recorded_again_with_another_size_replaces_its_bytes(tenant: Any) -> None:
    upload = media_initiate(
        tenant=tenant, artisan_id="art_1", content_type="audio/ogg", file_size=None, open_multipart=True, actor="t"
    )
    media = upload.media
    media_record_part(media=media, part_number=1, size=PART, etag='"a"', actor="t")
    media_record_part(media=media, part_number=2, size=100, etag='"b"', actor="t")
    media_record_part(media=media, part_number=2, size=300, etag='"c"', actor="t")
    media.refresh_from_db()
    assert (media.parts_recorded, media.bytes_recorded) == (2, PART + 300)
