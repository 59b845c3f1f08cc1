"""The expiry sweep gives back the storage of abandoned uploads, on S3 (a moto server over HTTP,
driven by the real boto3 client) and on the local backend, and never touches a finished one.
Time passes by moving `expires_at` and `created_at` back, as a week would."""

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.conftest import put_bytes
from tests.helpers import (
    AUDIO,
    MULTIPART_SIZE,
    PART,
    PHOTO,
    assert_error,
    complete_body,
    create_upload,
    initiate,
    object_bytes,
    payload,
    put_part,
    quoted_md5,
    row_counts,
    sign_parts,
    split,
    uploaded_submission,
)
from tests.integration.conftest import ServerBucket
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.queue import LocalQueue, get_publisher
from uploads.services import SweepReport, sweep_expired
from uploads.storage import StorageError, get_storage

DATA = payload(MULTIPART_SIZE, seed=7)
PARTS = split(DATA, PART)


# --- helpers ---------------------------------------------------------------------------------------
def past_expiry(*media_ids: str) -> None:
    """The uploads' week is over."""
    MediaUpload.objects.filter(media_id__in=media_ids).update(expires_at=timezone.now() - timedelta(minutes=1))


def past_ttl(*tracking_ids: str) -> None:
    """The submissions began longer ago than UPLOADS_SUBMISSION_TTL_SECONDS."""
    began = timezone.now() - timedelta(seconds=django_settings.UPLOADS_SUBMISSION_TTL_SECONDS + 60)
    Submission.objects.filter(tracking_id__in=tracking_ids).update(created_at=began)


def unavailable(**_: Any) -> None:
    """Storage during an outage (patched over a backend's abort_multipart)."""
    raise StorageError("connection reset by peer")


def media(media_id: str) -> MediaUpload:
    return MediaUpload.objects.get(media_id=media_id)


def submission(tracking_id: str) -> Submission:
    return Submission.objects.get(tracking_id=tracking_id)


def parts_dir(media_id: str) -> Path:
    return Path(django_settings.UPLOADS_LOCAL_ROOT) / "multipart" / media(media_id).multipart_upload_id


def local_storage_snapshot() -> dict[str, str]:
    """Every file the local backend holds (objects, metadata, parts), with a digest of its bytes."""
    root = Path(django_settings.UPLOADS_LOCAL_ROOT)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def held_files() -> list[str]:
    """What the local backend holds for someone: objects, their metadata, parts (its empty lock
    files are bookkeeping of its own)."""
    return sorted(path for path in local_storage_snapshot() if not path.endswith(".lock"))


def db_snapshot() -> dict[str, Any]:
    """Every row the sweep could change, with the fields it could change."""
    return {
        "counts": row_counts(),
        "submissions": list(Submission.objects.order_by("pk").values_list("tracking_id", "stage", "version")),
        "media": list(MediaUpload.objects.order_by("pk").values_list("media_id", "status", "version", "released_at")),
        "events": list(Event.objects.order_by("pk").values_list("pk", "action")),
        "outbox": list(OutboxMessage.objects.order_by("pk").values_list("pk", "topic")),
    }


def abandoned_multipart(api: APIClient, *, parts: int = 2, **create: Any) -> dict[str, Any]:
    """A multipart upload of DATA with its first `parts` parts sent, then left; returns the create
    response plus the signed URL of a part it never sent."""
    created = create_upload(api, file_size=len(DATA), part_size=PART, **create)
    assert created["strategy"] == "multipart"
    signed = sign_parts(api, created["mediaId"], list(range(1, parts + 2)))
    for number in range(1, parts + 1):
        put_part(signed[number], PARTS[number - 1])
    return {**created, "unsentPart": signed[parts + 1]}


def completed_submission(api: APIClient) -> dict[str, str]:
    """Both files at storage and the submission completed through the contract's endpoint."""
    done = uploaded_submission(api)
    response = api.post("/v1/catalog/upload/complete", complete_body(done), format="json")
    assert response.status_code == 202, response.content
    return done


def assert_completed_untouched(done: dict[str, str], stage: str, version: int) -> None:
    for media_id in (done["photoMediaId"], done["audioMediaId"]):
        row = media(media_id)
        assert (row.status, row.released_at) == (MediaStatus.UPLOADED, None)
        assert not Event.objects.filter(media=row).exclude(action__in=["media.initiated", "media.uploaded"]).exists()
    after = submission(done["trackingId"])
    assert (after.stage, after.version) == (stage, version)


def assert_expired_and_released(media_id: str) -> None:
    row = media(media_id)
    assert row.status == MediaStatus.EXPIRED
    assert row.released_at is not None
    [event] = Event.objects.filter(media=row, action="media.expired")
    assert event.actor == "system:sweep"


# --- S3 ------------------------------------------------------------------------------------------
def test_expiry_sweep_aborts_expired_multipart_upload_at_storage(api: APIClient, bucket: ServerBucket) -> None:
    abandoned = abandoned_multipart(api, parts=2)
    key, media_id = abandoned["key"], abandoned["mediaId"]
    [upload] = bucket.multipart_uploads_of(key)
    listed = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    done = completed_submission(api)
    before = submission(done["trackingId"])
    past_expiry(media_id, done["photoMediaId"], done["audioMediaId"])
    past_ttl(done["trackingId"])

    report = sweep_expired(dry_run=False)

    assert report == SweepReport(expired_media=[media_id], released_media=[media_id])
    assert bucket.multipart_uploads_of(key) == []
    assert not bucket.has_object(key)
    assert_expired_and_released(media_id)
    # The completed submission, past expiry too, keeps every byte.
    assert_completed_untouched(done, stage=before.stage, version=before.version)
    for key_name, data in (("photoKey", PHOTO), ("audioKey", AUDIO)):
        assert bucket.client.head_object(Bucket=bucket.name, Key=done[key_name])["ContentLength"] == len(data)
        assert bucket.object_bytes(done[key_name]) == data


def test_expiry_sweep_deletes_the_object_of_an_uncompleted_single_put_on_s3(
    api: APIClient, bucket: ServerBucket
) -> None:
    sent = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(sent["uploadUrl"], PHOTO, sent["headers"]).status_code == 200
    assert bucket.has_object(sent["key"])
    past_expiry(sent["mediaId"])

    report = sweep_expired(dry_run=False)

    assert report.expired_media == report.released_media == [sent["mediaId"]]
    assert not bucket.has_object(sent["key"])
    assert_expired_and_released(sent["mediaId"])


def test_an_object_put_through_a_url_still_valid_after_an_abort_is_deleted_once_the_url_expired(
    api: APIClient, bucket: ServerBucket
) -> None:
    sent = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert api.delete(f"/v1/catalog/uploads/{sent['mediaId']}").status_code == 200
    # The client still holds the signed URL: S3 takes the PUT, the portal no longer tracks it.
    assert put_bytes(sent["uploadUrl"], PHOTO, sent["headers"]).status_code == 200
    assert bucket.has_object(sent["key"])

    assert sweep_expired(dry_run=False).released_media == []  # the URL may still be used: not yet
    assert bucket.has_object(sent["key"])
    url_lifetime = timedelta(seconds=django_settings.UPLOADS_URL_EXPIRY_SECONDS)
    MediaUpload.objects.filter(media_id=sent["mediaId"]).update(updated_at=timezone.now() - url_lifetime)

    assert sweep_expired(dry_run=False).released_media == [sent["mediaId"]]
    assert not bucket.has_object(sent["key"])
    assert sweep_expired(dry_run=False).released_media == []  # once: the URL can no longer be used
    assert media(sent["mediaId"]).status == MediaStatus.ABORTED


def test_expiry_sweep_marks_expired_during_storage_outage_and_releases_on_the_next_run(
    api: APIClient, bucket: ServerBucket
) -> None:
    abandoned = abandoned_multipart(api, parts=1)
    media_id, key = abandoned["mediaId"], abandoned["key"]
    past_expiry(media_id)

    with pytest.MonkeyPatch.context() as outage:
        outage.setattr(get_storage(), "abort_multipart", unavailable)
        during = sweep_expired(dry_run=False)

    assert during == SweepReport(expired_media=[media_id], release_failed=[media_id])
    row = media(media_id)
    assert (row.status, row.released_at) == (MediaStatus.EXPIRED, None)
    assert len(bucket.multipart_uploads_of(key)) == 1
    # Expired already: the upload takes no more parts even though storage still holds it.
    assert_error(api.post(f"/v1/catalog/uploads/{media_id}/parts", {"partNumbers": [2]}), 409, "upload_closed")

    after = sweep_expired(dry_run=False)

    assert after == SweepReport(released_media=[media_id])
    assert bucket.multipart_uploads_of(key) == []
    assert_expired_and_released(media_id)


# --- local backend -------------------------------------------------------------------------------
def test_expiry_sweep_removes_parts_directory_of_expired_upload_on_local_storage(api: APIClient) -> None:
    abandoned = abandoned_multipart(api, parts=2)
    media_id = abandoned["mediaId"]
    directory = parts_dir(media_id)
    assert len([p for p in directory.iterdir() if p.name[:5].isdigit()]) == 2
    done = completed_submission(api)
    before = submission(done["trackingId"])
    past_expiry(media_id, done["photoMediaId"], done["audioMediaId"])
    past_ttl(done["trackingId"])

    report = sweep_expired(dry_run=False)

    assert report == SweepReport(expired_media=[media_id], released_media=[media_id])
    assert not directory.exists()
    assert not any(path.startswith("multipart/") for path in held_files())
    assert_expired_and_released(media_id)
    assert_error(put_bytes(abandoned["unsentPart"]["url"], PARTS[2]), 404, "not_found")
    assert object_bytes(done["photoKey"]) == PHOTO
    assert object_bytes(done["audioKey"]) == AUDIO
    assert_completed_untouched(done, stage=before.stage, version=before.version)


def test_expiry_sweep_deletes_the_bytes_of_an_uncompleted_single_put_on_local_storage(api: APIClient) -> None:
    sent = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(sent["uploadUrl"], PHOTO, sent["headers"]).status_code == 200
    assert object_bytes(sent["key"]) == PHOTO
    past_expiry(sent["mediaId"])

    sweep_expired(dry_run=False)

    assert held_files() == []
    assert_expired_and_released(sent["mediaId"])


def test_expiry_sweep_leaves_uploads_before_their_expiry_alone(api: APIClient) -> None:
    fresh = abandoned_multipart(api, parts=1)
    snapshot = db_snapshot(), local_storage_snapshot()

    assert sweep_expired(dry_run=False) == SweepReport()

    assert (db_snapshot(), local_storage_snapshot()) == snapshot
    assert media(fresh["mediaId"]).status == MediaStatus.PENDING


def test_expiry_sweep_releases_an_aborted_upload_whose_release_failed(api: APIClient) -> None:
    abandoned = abandoned_multipart(api, parts=2)
    media_id = abandoned["mediaId"]

    with pytest.MonkeyPatch.context() as outage:
        outage.setattr(get_storage(), "abort_multipart", unavailable)
        assert_error(api.delete(f"/v1/catalog/uploads/{media_id}"), 503, "storage_unavailable")
    row = media(media_id)
    assert (row.status, row.released_at) == (MediaStatus.ABORTED, None)
    assert parts_dir(media_id).exists()

    report = sweep_expired(dry_run=False)

    assert report == SweepReport(released_media=[media_id])
    assert not parts_dir(media_id).exists()
    row = media(media_id)
    assert row.status == MediaStatus.ABORTED
    assert row.released_at is not None
    assert not Event.objects.filter(media=row, action="media.expired").exists()


# --- submissions past their TTL ------------------------------------------------------------------
def test_expiry_sweep_expires_submissions_stuck_past_the_ttl_with_their_pending_media(api: APIClient) -> None:
    initiated = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    uploading = abandoned_multipart(api, parts=1)
    recorded = api.put(
        f"/v1/catalog/uploads/{uploading['mediaId']}/parts/1",
        {"etag": quoted_md5(PARTS[0]), "size": PART},
        format="json",
    )
    assert recorded.status_code == 200, recorded.content
    assert submission(uploading["trackingId"]).stage == Stage.UPLOADING
    young = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    stale = {initiated["trackingId"]: initiated["mediaId"], uploading["trackingId"]: uploading["mediaId"]}
    versions = {tracking_id: submission(tracking_id).version for tracking_id in stale}
    past_ttl(*stale)
    young_before = db_snapshot()["submissions"][-1]

    report = sweep_expired(dry_run=False)

    assert sorted(report.expired_submissions) == sorted(stale)
    assert sorted(report.expired_media) == sorted(report.released_media) == sorted(stale.values())
    for tracking_id, media_id in stale.items():
        expired = submission(tracking_id)
        assert (expired.stage, expired.version) == (Stage.EXPIRED, versions[tracking_id] + 1)
        [event] = Event.objects.filter(submission=expired, action="submission.expired")
        assert event.actor == "system:sweep"
        [message] = OutboxMessage.objects.filter(submission=expired, body__stage="expired")
        assert message.topic == OutboxMessage.Topic.STATUS
        assert (message.body["trackingId"], message.body["version"]) == (tracking_id, expired.version)
        # Their uploads had most of their week left, but belong to nothing that can complete.
        assert media(media_id).expires_at > timezone.now()
        assert_expired_and_released(media_id)
        status = api.get(f"/v1/catalog/status/{tracking_id}")
        assert (status.status_code, status.json()["stage"]) == (200, "expired")
    assert not parts_dir(uploading["mediaId"]).exists()
    assert db_snapshot()["submissions"][-1] == young_before == (young["trackingId"], Stage.INITIATED, 1)
    assert media(young["mediaId"]).status == MediaStatus.PENDING
    assert not OutboxMessage.objects.filter(submission__tracking_id=young["trackingId"]).exists()
    # An expired submission takes no new file.
    refused = api.post(
        "/v1/catalog/upload/initiate",
        {"artisanId": "art_1", "contentType": "audio/ogg", "fileSize": 10, "trackingId": initiated["trackingId"]},
        format="json",
    )
    assert assert_error(refused, 409, "conflict")["details"]["stage"] == "expired"


# --- dry run, idempotence, tenants ---------------------------------------------------------------
def test_expiry_sweep_dry_run_changes_nothing_and_lists_what_a_real_run_does(api: APIClient) -> None:
    expired_upload = abandoned_multipart(api, parts=2)
    stale = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    aborted = abandoned_multipart(api, parts=1)
    with pytest.MonkeyPatch.context() as outage:
        outage.setattr(get_storage(), "abort_multipart", unavailable)
        assert api.delete(f"/v1/catalog/uploads/{aborted['mediaId']}").status_code == 503
    done = completed_submission(api)
    past_expiry(expired_upload["mediaId"], done["photoMediaId"], done["audioMediaId"])
    past_ttl(stale["trackingId"], done["trackingId"])
    before = db_snapshot(), local_storage_snapshot()

    preview = sweep_expired(dry_run=True)

    assert (db_snapshot(), local_storage_snapshot()) == before
    assert preview.expired_submissions == [stale["trackingId"]]
    assert sorted(preview.expired_media) == sorted([expired_upload["mediaId"], stale["mediaId"]])
    assert sorted(preview.released_media) == sorted([expired_upload["mediaId"], stale["mediaId"], aborted["mediaId"]])
    assert preview.release_failed == []

    real = sweep_expired(dry_run=False)

    assert real.expired_submissions == preview.expired_submissions
    assert sorted(real.expired_media) == sorted(preview.expired_media)
    assert sorted(real.released_media) == sorted(preview.released_media)


def test_expiry_sweep_run_twice_does_nothing_the_second_time(api: APIClient) -> None:
    expired_upload = abandoned_multipart(api, parts=2)
    stale = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    past_expiry(expired_upload["mediaId"])
    past_ttl(stale["trackingId"])
    first = sweep_expired(dry_run=False)
    assert first.expired_submissions == [stale["trackingId"]]
    after_first = db_snapshot(), local_storage_snapshot()

    second = sweep_expired(dry_run=False)

    assert second == SweepReport()
    assert (db_snapshot(), local_storage_snapshot()) == after_first
    assert Event.objects.filter(action__in=["media.expired", "submission.expired"]).count() == 3
    assert OutboxMessage.objects.filter(body__stage="expired").count() == 1


def test_expiry_sweep_covers_every_tenant_without_cross_effects(
    api: APIClient, other_api: APIClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = abandoned_multipart(api, parts=1, artisan_id="art_same")
    theirs = abandoned_multipart(other_api, parts=1, artisan_id="art_same")
    their_stale = initiate(other_api, content_type="image/jpeg", file_size=len(PHOTO))
    their_fresh = abandoned_multipart(other_api, parts=2)
    our_done = completed_submission(api)
    their_done = completed_submission(other_api)
    past_expiry(
        ours["mediaId"],
        theirs["mediaId"],
        our_done["photoMediaId"],
        our_done["audioMediaId"],
        their_done["photoMediaId"],
        their_done["audioMediaId"],
    )
    past_ttl(their_stale["trackingId"])
    before = {d["trackingId"]: submission(d["trackingId"]) for d in (our_done, their_done)}

    report = sweep_expired(dry_run=False)

    assert report.expired_submissions == [their_stale["trackingId"]]
    assert sorted(report.released_media) == sorted([ours["mediaId"], theirs["mediaId"], their_stale["mediaId"]])
    for expired in (ours, theirs):
        assert_expired_and_released(expired["mediaId"])
        assert not parts_dir(expired["mediaId"]).exists()
    assert submission(theirs["trackingId"]).tenant == other_tenant
    assert submission(ours["trackingId"]).tenant == tenant
    # Their own upload expired; the submissions are younger than the TTL and stay open.
    assert submission(ours["trackingId"]).stage == submission(theirs["trackingId"]).stage == Stage.INITIATED
    assert media(their_fresh["mediaId"]).status == MediaStatus.PENDING
    assert len([p for p in parts_dir(their_fresh["mediaId"]).iterdir() if p.name[:5].isdigit()]) == 2
    for done in (our_done, their_done):
        assert_completed_untouched(done, before[done["trackingId"]].stage, before[done["trackingId"]].version)
        assert object_bytes(done["photoKey"]) == PHOTO
        assert object_bytes(done["audioKey"]) == AUDIO


# --- completing after the sweep ------------------------------------------------------------------
def test_completing_an_upload_the_sweep_expired_is_refused(api: APIClient) -> None:
    abandoned = abandoned_multipart(api, parts=len(PARTS) - 1)
    put_part(abandoned["unsentPart"], PARTS[-1])  # every byte sent, never completed
    past_expiry(abandoned["mediaId"])
    sweep_expired(dry_run=False)

    refused = api.post(f"/v1/catalog/uploads/{abandoned['mediaId']}/complete")

    assert assert_error(refused, 409, "upload_closed")["details"] == {"status": "expired"}
    assert media(abandoned["mediaId"]).status == MediaStatus.EXPIRED
    assert held_files() == []


def test_completing_a_submission_whose_files_the_sweep_expired_is_refused_without_processing_message(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    sent = uploaded_submission(api)  # both files at storage, the submission never completed
    past_expiry(sent["photoMediaId"], sent["audioMediaId"])
    assert sweep_expired(dry_run=False).expired_submissions == []

    with django_capture_on_commit_callbacks(execute=True):
        refused = api.post("/v1/catalog/upload/complete", complete_body(sent), format="json")

    assert assert_error(refused, 409, "upload_closed")["details"] == {"status": "expired"}
    assert submission(sent["trackingId"]).stage == Stage.INITIATED
    assert not OutboxMessage.objects.filter(topic=OutboxMessage.Topic.PROCESSING).exists()
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    assert list(queue.messages()) == []


def test_completing_a_submission_the_sweep_expired_is_refused_without_processing_message(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    sent = uploaded_submission(api)
    past_ttl(sent["trackingId"])
    assert sweep_expired(dry_run=False).expired_submissions == [sent["trackingId"]]

    with django_capture_on_commit_callbacks(execute=True):
        refused = api.post("/v1/catalog/upload/complete", complete_body(sent), format="json")

    error = assert_error(refused, 409, "conflict")
    assert error["details"] == {"trackingId": sent["trackingId"], "stage": "expired"}
    assert submission(sent["trackingId"]).stage == Stage.EXPIRED
    assert not OutboxMessage.objects.filter(topic=OutboxMessage.Topic.PROCESSING).exists()
    queue = get_publisher("processing")
    assert isinstance(queue, LocalQueue)
    assert list(queue.messages()) == []


def test_expiry_sweep_expires_pending_media_of_a_submission_an_earlier_run_expired(api: APIClient) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    audio = abandoned_multipart(api, parts=1, tracking_id=photo["trackingId"])
    past_ttl(photo["trackingId"])
    first = sweep_expired(dry_run=False, limit=1)
    assert first.expired_submissions == [photo["trackingId"]]
    assert len(first.expired_media) == 1  # the limit cut the other file off
    assert first.expired_media == [photo["mediaId"]]  # the older file first
    # Until the next run closes the other, it is refused as a file of a closed submission.
    closed = {"status": "pending", "submissionStage": "expired"}
    sign = api.post(f"/v1/catalog/uploads/{audio['mediaId']}/parts", {"partNumbers": [2]}, format="json")
    assert assert_error(sign, 409, "upload_closed")["details"] == closed
    complete = api.post(f"/v1/catalog/uploads/{audio['mediaId']}/complete")
    assert assert_error(complete, 409, "upload_closed")["details"] == closed

    sweep_expired(dry_run=False, limit=1)

    # The submission can never complete; its last file must not stay open for parts or completion.
    assert media(photo["mediaId"]).status == media(audio["mediaId"]).status == MediaStatus.EXPIRED
    assert not parts_dir(audio["mediaId"]).exists()
