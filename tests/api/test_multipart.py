"""Resumable multipart uploads through /v1/catalog/uploads on the local backend: the plan, signing,
out-of-order and repeated parts, progress from storage, completion (idempotent, also after a
lost response), abort; and the exact key set of every contract response."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import (
    AUDIO,
    MULTIPART_SIZE,
    PART,
    PHOTO,
    assert_error,
    assert_field_error,
    create_upload,
    initiate,
    object_bytes,
    payload,
    put_part,
    quoted_md5,
    s3_multipart_etag,
    sign_parts,
    split,
    stored_files,
    upload_multipart,
)
from uploads.models import Event, MediaStatus, MediaUpload, Stage, Submission
from uploads.storage import get_storage

DATA = payload(MULTIPART_SIZE, seed=10)
PARTS = split(DATA, PART)  # four of 64 KiB and a last one of 10,000 bytes

CREATE_MULTIPART_KEYS = {"trackingId", "mediaId", "key", "strategy", "expiresAt", "partSize", "numParts"}
CREATE_SINGLE_KEYS = {"trackingId", "mediaId", "key", "strategy", "expiresAt", "uploadUrl", "headers"}
SIGNED_PART_KEYS = {"partNumber", "url", "size", "expiresAt", "headers"}
PROGRESS_KEYS = {
    "mediaId",
    "trackingId",
    "key",
    "status",
    "strategy",
    "fileSize",
    "expiresAt",
    "bytesUploaded",
    "completedParts",
    "pendingParts",
    "pendingPartUrls",
}
MEDIA_COMPLETE_KEYS = {"mediaId", "key", "status", "size", "etag"}


def uploads(media_id: str, suffix: str = "") -> str:
    return f"/v1/catalog/uploads/{media_id}{suffix}"


def progress(api: APIClient, media_id: str, urls: int = 0) -> dict[str, Any]:
    response = api.get(uploads(media_id) + (f"?urls={urls}" if urls else ""))
    assert response.status_code == 200, response.content
    return response.json()


def complete(api: APIClient, media_id: str) -> Any:
    return api.post(uploads(media_id, "/complete"))


def stored_part(number: int) -> dict[str, Any]:
    data = PARTS[number - 1]
    return {"partNumber": number, "size": len(data), "etag": quoted_md5(data)}


# --- the plan ------------------------------------------------------------------------------------
def test_create_fixes_equal_parts_and_a_shorter_last_part(api: APIClient) -> None:
    created = create_upload(api, file_size=MULTIPART_SIZE)
    assert set(created) == CREATE_MULTIPART_KEYS
    assert (created["strategy"], created["partSize"], created["numParts"]) == ("multipart", PART, 5)
    signed = sign_parts(api, created["mediaId"], [1, 2, 3, 4, 5])
    assert all(set(part) == SIGNED_PART_KEYS for part in signed.values())
    assert {n: part["size"] for n, part in signed.items()} == {1: PART, 2: PART, 3: PART, 4: PART, 5: 10_000}
    assert sum(part["size"] for part in signed.values()) == MULTIPART_SIZE


def test_file_that_is_a_multiple_of_the_part_size_has_no_short_part(api: APIClient) -> None:
    created = create_upload(api, file_size=5 * PART)
    assert (created["partSize"], created["numParts"]) == (PART, 5)
    assert sign_parts(api, created["mediaId"], [5])[5]["size"] == PART


def test_client_proposed_part_size_is_the_plan(api: APIClient) -> None:
    created = create_upload(api, file_size=MULTIPART_SIZE, part_size=100_000)
    assert (created["partSize"], created["numParts"]) == (100_000, 3)
    assert sign_parts(api, created["mediaId"], [3])[3]["size"] == MULTIPART_SIZE - 200_000


def test_proposing_a_part_size_makes_even_a_small_file_multipart(api: APIClient) -> None:
    created = create_upload(api, file_size=PART + 1, part_size=PART)
    assert (created["strategy"], created["numParts"]) == ("multipart", 2)


@pytest.mark.parametrize(("file_size", "strategy"), [(256 * 1024, "single"), (256 * 1024 + 1, "multipart")])
def test_multipart_starts_above_the_threshold(api: APIClient, file_size: int, strategy: str) -> None:
    assert create_upload(api, file_size=file_size)["strategy"] == strategy


def test_proposed_part_size_below_the_minimum_is_400(api: APIClient) -> None:
    body = {"artisanId": "art_1", "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE, "partSize": PART - 1}
    assert_field_error(api.post("/v1/catalog/uploads", body, format="json"), "partSize")
    assert stored_files() == []
    assert not MediaUpload.objects.exists()


def test_proposed_part_size_needing_more_than_10000_parts_is_400(api: APIClient) -> None:
    body = {"artisanId": "art_1", "contentType": "audio/ogg", "fileSize": 10_000 * PART + 1, "partSize": PART}
    response = api.post("/v1/catalog/uploads", body, format="json")
    assert_field_error(response, "partSize")
    assert response.json()["error"]["details"]["minPartSize"] > PART
    assert stored_files() == []
    assert not MediaUpload.objects.exists()


def test_exactly_10000_parts_is_allowed(api: APIClient) -> None:
    created = create_upload(api, file_size=10_000 * PART, part_size=PART)
    assert created["numParts"] == 10_000


# --- the whole journey -----------------------------------------------------------------------------
def test_parts_out_of_order_and_repeated_complete_into_the_exact_bytes(api: APIClient) -> None:
    created = create_upload(api)
    media_id = created["mediaId"]
    signed = sign_parts(api, media_id, [1, 2, 3, 4, 5])
    put_part(signed[3], PARTS[2])
    put_part(signed[1], payload(PART, seed=99))  # a first attempt, replaced below
    put_part(signed[5], PARTS[4])
    put_part(signed[2], PARTS[1])
    put_part(signed[1], PARTS[0])
    put_part(signed[3], PARTS[2])  # sent twice, same bytes
    for number in (1, 2, 3, 4, 5):
        put_part(signed[number], PARTS[number - 1])

    response = complete(api, media_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {
        "mediaId": media_id,
        "key": created["key"],
        "status": "uploaded",
        "size": MULTIPART_SIZE,
        "etag": s3_multipart_etag(PARTS),
    }
    assert object_bytes(created["key"]) == DATA


def test_progress_comes_from_storage_not_from_the_clients_reports(api: APIClient) -> None:
    created = create_upload(api)
    media_id = created["mediaId"]
    signed = sign_parts(api, media_id, [1, 2, 3, 4, 5])
    for number in (5, 3, 1, 2):
        put_part(signed[number], PARTS[number - 1])
    # The client claims part 4, which never reached storage.
    response = api.put(uploads(media_id, "/parts/4"), {"etag": quoted_md5(PARTS[3]), "size": PART}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"partNumber": 4, "size": PART, "etag": quoted_md5(PARTS[3])}

    state = progress(api, media_id)
    assert set(state) == PROGRESS_KEYS | {"partSize", "numParts"}
    assert state["status"] == "pending"
    assert state["pendingParts"] == [4]
    assert state["completedParts"] == [stored_part(n) for n in (1, 2, 3, 5)]
    assert state["bytesUploaded"] == MULTIPART_SIZE - PART
    assert state["pendingPartUrls"] == []


def test_complete_with_a_missing_part_is_409_listing_it_and_resume_finishes(api: APIClient) -> None:
    created = create_upload(api)
    media_id = created["mediaId"]
    signed = sign_parts(api, media_id, [1, 2, 3, 4, 5])
    for number in (1, 2, 3, 5):
        put_part(signed[number], PARTS[number - 1])
    api.put(uploads(media_id, "/parts/4"), {"etag": quoted_md5(PARTS[3]), "size": PART}, format="json")

    error = assert_error(complete(api, media_id), 409, "parts_mismatch")
    assert error["details"] == {"missingParts": [4], "wrongSizeParts": [], "numParts": 5}
    assert MediaUpload.objects.get(media_id=media_id).status == MediaStatus.PENDING

    state = progress(api, media_id, urls=5)
    [fresh] = state["pendingPartUrls"]
    assert set(fresh) == SIGNED_PART_KEYS
    assert (fresh["partNumber"], fresh["size"]) == (4, PART)
    put_part(fresh, PARTS[3])

    response = complete(api, media_id)
    assert response.status_code == 200, response.content
    assert response.json()["etag"] == s3_multipart_etag(PARTS)
    assert object_bytes(created["key"]) == DATA


def test_urls_query_signs_only_pending_parts_up_to_the_count(api: APIClient) -> None:
    created = create_upload(api)
    signed = sign_parts(api, created["mediaId"], [2])
    put_part(signed[2], PARTS[1])
    state = progress(api, created["mediaId"], urls=3)
    assert [p["partNumber"] for p in state["pendingPartUrls"]] == [1, 3, 4]
    assert [p["size"] for p in state["pendingPartUrls"]] == [PART, PART, PART]
    assert state["pendingParts"] == [1, 3, 4, 5]


def test_part_of_the_wrong_size_at_storage_is_pending_and_blocks_completion(api: APIClient) -> None:
    created = create_upload(api)
    media = MediaUpload.objects.get(media_id=created["mediaId"])
    # A part signed for the wrong size behind the API's back (a buggy or hostile signer).
    wrong = get_storage().presign_parts(
        key=media.object_key, upload_id=media.multipart_upload_id, parts=[(1, PART - 1)], expires_in=60
    )[0]
    assert put_bytes(f"http://testserver{wrong.url}", PARTS[0][:-1]).status_code == 200
    assert progress(api, media.media_id)["pendingParts"] == [1, 2, 3, 4, 5]
    error = assert_error(complete(api, media.media_id), 409, "parts_mismatch")
    assert error["details"]["wrongSizeParts"] == [{"partNumber": 1, "expectedSize": PART, "size": PART - 1}]
    assert not [f for f in stored_files() if f.startswith("objects/")]


def test_complete_again_returns_the_same_answer(api: APIClient) -> None:
    created = upload_multipart(api, DATA)
    first = complete(api, created["mediaId"])
    second = complete(api, created["mediaId"])
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert set(first.json()) == MEDIA_COMPLETE_KEYS
    assert Event.objects.filter(action="media.uploaded").count() == 1
    assert object_bytes(created["key"]) == DATA


def test_progress_after_completion_shows_every_byte_uploaded(api: APIClient) -> None:
    created = upload_multipart(api, DATA)
    assert complete(api, created["mediaId"]).status_code == 200
    state = progress(api, created["mediaId"], urls=5)
    assert (state["status"], state["bytesUploaded"], state["pendingParts"]) == ("uploaded", MULTIPART_SIZE, [])
    assert state["pendingPartUrls"] == []


def test_complete_after_storage_completed_but_the_response_was_lost(api: APIClient) -> None:
    created = upload_multipart(api, DATA)
    media = MediaUpload.objects.get(media_id=created["mediaId"])
    storage = get_storage()
    parts = storage.list_parts(key=media.object_key, upload_id=media.multipart_upload_id)
    storage.complete_multipart(key=media.object_key, upload_id=media.multipart_upload_id, parts=parts)

    state = progress(api, media.media_id)
    assert (state["status"], state["pendingParts"], state["bytesUploaded"]) == ("pending", [], MULTIPART_SIZE)

    response = complete(api, media.media_id)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "mediaId": media.media_id,
        "key": media.object_key,
        "status": "uploaded",
        "size": MULTIPART_SIZE,
        "etag": s3_multipart_etag(PARTS),
    }
    assert object_bytes(media.object_key) == DATA


def test_submission_complete_assembles_a_multipart_audio(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    audio = upload_multipart(api, DATA, tracking_id=photo["trackingId"])
    body = {"trackingId": photo["trackingId"], "photoKey": photo["key"], "audioKey": audio["key"], "language": "ta"}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/v1/catalog/upload/complete", body, format="json")
    assert response.status_code == 202, response.content
    assert object_bytes(audio["key"]) == DATA
    assert MediaUpload.objects.get(media_id=audio["mediaId"]).etag == s3_multipart_etag(PARTS)
    assert Submission.objects.get().stage == Stage.QUEUED


# --- abort -----------------------------------------------------------------------------------------
def test_delete_aborts_at_storage_and_is_idempotent(api: APIClient) -> None:
    created = create_upload(api)
    media_id = created["mediaId"]
    signed = sign_parts(api, media_id, [1, 2])
    put_part(signed[1], PARTS[0])

    first = api.delete(uploads(media_id))
    assert first.status_code == 200, first.content
    assert first.json() == {"mediaId": media_id, "key": created["key"], "status": "aborted"}
    assert stored_files() == []
    second = api.delete(uploads(media_id))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Event.objects.filter(action="media.aborted").count() == 1

    assert_error(put_bytes(signed[2]["url"], PARTS[1]), 404, "not_found")
    assert_error(api.post(uploads(media_id, "/parts"), {"partNumbers": [2]}, format="json"), 409, "upload_closed")
    assert_error(complete(api, media_id), 409, "upload_closed")
    assert_error(
        api.put(uploads(media_id, "/parts/2"), {"etag": quoted_md5(PARTS[1]), "size": PART}, format="json"),
        409,
        "upload_closed",
    )
    assert progress(api, media_id)["status"] == "aborted"
    assert stored_files() == []


def test_delete_after_complete_is_409_and_keeps_the_object(api: APIClient) -> None:
    created = upload_multipart(api, DATA)
    assert complete(api, created["mediaId"]).status_code == 200
    assert_error(api.delete(uploads(created["mediaId"])), 409, "conflict")
    assert MediaUpload.objects.get(media_id=created["mediaId"]).status == MediaStatus.UPLOADED
    assert object_bytes(created["key"]) == DATA


# --- single PUT through /uploads -----------------------------------------------------------------
def test_single_upload_through_uploads_completes_the_same_way(api: APIClient) -> None:
    created = create_upload(api, content_type="image/png", file_size=len(PHOTO))
    assert set(created) == CREATE_SINGLE_KEYS
    assert created["strategy"] == "single"
    assert created["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    before = progress(api, created["mediaId"])
    assert set(before) == PROGRESS_KEYS
    assert (before["bytesUploaded"], before["completedParts"], before["pendingParts"]) == (0, [], [1])
    assert put_bytes(created["uploadUrl"], PHOTO, created["headers"]).status_code == 200

    state = progress(api, created["mediaId"])
    assert set(state) == PROGRESS_KEYS
    assert state["bytesUploaded"] == len(PHOTO)
    assert state["completedParts"] == [{"partNumber": 1, "size": len(PHOTO), "etag": quoted_md5(PHOTO)}]
    assert state["pendingParts"] == []

    response = complete(api, created["mediaId"])
    assert response.status_code == 200, response.content
    assert response.json() == {
        "mediaId": created["mediaId"],
        "key": created["key"],
        "status": "uploaded",
        "size": len(PHOTO),
        "etag": quoted_md5(PHOTO),
    }


def test_a_lost_single_put_url_is_signed_afresh_by_the_urls_query(api: APIClient) -> None:
    created = create_upload(api, content_type="image/png", file_size=len(PHOTO))
    [fresh] = progress(api, created["mediaId"], urls=1)["pendingPartUrls"]
    assert set(fresh) == SIGNED_PART_KEYS
    assert (fresh["partNumber"], fresh["size"], fresh["headers"]) == (
        1,
        len(PHOTO),
        {"Content-Type": "image/png", "If-None-Match": "*"},
    )
    put_part(fresh, PHOTO)
    assert complete(api, created["mediaId"]).status_code == 200
    assert object_bytes(created["key"]) == PHOTO


def test_a_single_upload_has_no_parts_to_sign(api: APIClient) -> None:
    created = create_upload(api, content_type="image/png", file_size=len(PHOTO))
    assert_error(api.post(uploads(created["mediaId"], "/parts"), {"partNumbers": [1]}, format="json"), 409)
    body = {"etag": quoted_md5(PHOTO), "size": len(PHOTO)}
    assert_error(api.put(uploads(created["mediaId"], "/parts/1"), body, format="json"), 409)


def test_complete_of_a_single_upload_before_its_bytes_is_409(api: APIClient) -> None:
    created = create_upload(api, content_type="image/png", file_size=len(PHOTO))
    assert_error(complete(api, created["mediaId"]), 409, "object_missing")
    assert MediaUpload.objects.get().status == MediaStatus.PENDING


# --- the contract's key sets -------------------------------------------------------------------------
def test_initiate_and_submission_complete_and_status_have_exact_key_sets(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert set(photo) == {"trackingId", "uploadUrl", "expiresAt", "key", "mediaId", "headers", "uploadMethod"}
    audio = create_upload(api, file_size=MULTIPART_SIZE, tracking_id=photo["trackingId"])

    status = api.get(f"/v1/catalog/status/{photo['trackingId']}").json()
    assert set(status) == {"trackingId", "stage", "message", "timestamp", "files"}
    photo_file, audio_file = status["files"]
    file_keys = {"mediaId", "kind", "key", "contentType", "strategy", "status", "fileSize", "bytesRecorded"}
    assert set(photo_file) == file_keys
    assert set(audio_file) == file_keys | {"numParts"}

    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    signed = sign_parts(api, audio["mediaId"], [1, 2, 3, 4, 5])
    for number, part in signed.items():
        put_part(part, PARTS[number - 1])
    body = {"trackingId": photo["trackingId"], "photoKey": photo["key"], "audioKey": audio["key"], "language": "hi"}
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api.post("/v1/catalog/upload/complete", body, format="json")
    assert accepted.status_code == 202
    assert set(accepted.json()) == {"status", "trackingId", "message"}


def test_audio_payload_single_put_key_set_matches_the_contract(api: APIClient) -> None:
    """The original contract's initiate also serves audio, with a header set to send back."""
    audio = initiate(api, content_type="audio/ogg", file_size=len(AUDIO))
    assert set(audio) == {"trackingId", "uploadUrl", "expiresAt", "key", "mediaId", "headers", "uploadMethod"}
    assert audio["headers"] == {"Content-Type": "audio/ogg", "If-None-Match": "*"}
