"""Requests that overlap: the outcome is always one consistent story, never a deleted file that
was already handed to processing, and never a 5xx for the client's own retries."""

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import MULTIPART_SIZE, complete_body, uploaded_submission
from uploads.errors import UploadClosed
from uploads.models import MediaUpload, OutboxMessage, Submission
from uploads.services.completion import media_finish_at_storage, media_mark_uploaded, orphans_released
from uploads.storage import LocalStorage, get_storage


def test_completion_that_arrives_mid_abort_is_refused_and_nothing_is_queued(
    api: APIClient, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    submission = uploaded_submission(api)
    completions: list[Any] = []
    real_delete = LocalStorage.delete

    def complete_then_delete(self: LocalStorage, *, key: str) -> None:
        monkeypatch.setattr(LocalStorage, "delete", real_delete)
        with django_capture_on_commit_callbacks(execute=True):
            completions.append(api.post("/v1/catalog/upload/complete", complete_body(submission)))
        real_delete(self, key=key)

    monkeypatch.setattr(LocalStorage, "delete", complete_then_delete)
    aborted = api.delete(f"/v1/catalog/uploads/{submission['photoMediaId']}")

    assert aborted.status_code == 200
    assert aborted.json()["status"] == "aborted"
    [completion] = completions
    assert completion.status_code == 409
    assert completion.json()["error"]["code"] == "upload_closed"
    assert Submission.objects.get(tracking_id=submission["trackingId"]).stage in ("initiated", "uploading")
    assert not OutboxMessage.objects.exists()
    assert get_storage().head(key=submission["photoKey"]) is None


def test_abort_after_completion_is_409_and_keeps_the_file(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    submission = uploaded_submission(api)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/catalog/upload/complete", complete_body(submission)).status_code == 202
    response = api.delete(f"/v1/catalog/uploads/{submission['photoMediaId']}")
    assert response.status_code == 409
    assert get_storage().head(key=submission["photoKey"]) is not None
    assert MediaUpload.objects.get(media_id=submission["photoMediaId"]).status == "uploaded"


def test_part_resent_while_completing_is_409_parts_mismatch_then_completes(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = api.post(
        "/v1/catalog/uploads", {"artisanId": "art1", "contentType": "audio/ogg", "fileSize": MULTIPART_SIZE}
    )
    media = created.json()
    numbers = list(range(1, media["numParts"] + 1))
    parts = api.post(f"/v1/catalog/uploads/{media['mediaId']}/parts", {"partNumbers": numbers}).json()["parts"]
    for part in parts:
        assert put_bytes(part["url"], b"a" * part["size"]).status_code == 200
    real_complete = LocalStorage.complete_multipart

    def resend_first_part(self: LocalStorage, **kwargs: Any) -> None:
        monkeypatch.setattr(LocalStorage, "complete_multipart", real_complete)
        put_bytes(parts[0]["url"], b"b" * parts[0]["size"])  # the client retries part 1 meanwhile
        real_complete(self, **kwargs)

    monkeypatch.setattr(LocalStorage, "complete_multipart", resend_first_part)
    first = api.post(f"/v1/catalog/uploads/{media['mediaId']}/complete")
    assert first.status_code == 409
    assert first.json()["error"]["code"] == "parts_mismatch"

    second = api.post(f"/v1/catalog/uploads/{media['mediaId']}/complete")
    assert second.status_code == 200
    stored = (get_storage().root / "objects" / media["key"]).read_bytes()  # type: ignore[attr-defined]
    assert stored[: parts[0]["size"]] == b"b" * parts[0]["size"]


@pytest.mark.django_db
def test_non_ascii_digits_in_content_length_are_400() -> None:
    response = Client().put("/storage/put/abc", data=b"x", content_type="image/jpeg", CONTENT_LENGTH="\u00b2")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_object_completed_after_an_abort_won_the_row_is_removed(api: APIClient) -> None:
    submission = uploaded_submission(api)
    media = MediaUpload.objects.get(media_id=submission["photoMediaId"])
    stored = media_finish_at_storage(media=media)  # storage says: done
    # Meanwhile an abort claimed the row, and its own storage clean-up ran before our object appeared.
    MediaUpload.objects.filter(pk=media.pk).update(status="aborted")

    with pytest.raises(UploadClosed), orphans_released(), transaction.atomic():
        media_mark_uploaded(media=media, stored=stored, actor="test")
    assert get_storage().head(key=submission["photoKey"]) is None
