"""Rules no other test would miss if they went: a trackingId adds files for its own artisan only,
and a completed submission completed again with other values is a 409. (The size limit checked
again at completion is tests/api/test_size_limits.py's.)"""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.helpers import MULTIPART_SIZE, assert_error, complete_body, initiate, row_counts, uploaded_submission
from uploads.models import OutboxMessage, Submission


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/catalog/upload/initiate", {"contentType": "audio/ogg", "fileSize": 10}, id="initiate"),
        pytest.param("/v1/catalog/uploads", {"contentType": "audio/ogg", "fileSize": MULTIPART_SIZE}, id="uploads"),
    ],
)
def test_a_tracking_id_takes_no_file_for_another_artisan(api: APIClient, path: str, body: dict[str, Any]) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=10, artisan_id="art_1")
    before = row_counts()
    refused = api.post(path, {**body, "artisanId": "art_2", "trackingId": photo["trackingId"]}, format="json")
    error = assert_error(refused, 409, "conflict")
    assert error["details"] == {"field": "artisanId", "trackingId": photo["trackingId"]}
    assert row_counts() == before
    # The submission's own artisan still adds its file.
    added = api.post(path, {**body, "artisanId": "art_1", "trackingId": photo["trackingId"]}, format="json")
    assert added.status_code == 201, added.content


@pytest.fixture
def completed(api: APIClient, django_capture_on_commit_callbacks: Any) -> dict[str, str]:
    submission = uploaded_submission(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/v1/catalog/upload/complete", complete_body(submission), format="json")
    assert response.status_code == 202, response.content
    return submission


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"language": "ta"}, id="language"),
        pytest.param({"priority": "high"}, id="priority"),
        pytest.param("swapped", id="keys-swapped"),
    ],
)
def test_completing_again_with_other_values_is_409_and_changes_nothing(
    api: APIClient, completed: dict[str, str], change: Any
) -> None:
    if change == "swapped":  # each key names a file of the submission, but not the one recorded
        change = {"photoKey": completed["audioKey"], "audioKey": completed["photoKey"]}
    before = Submission.objects.get(tracking_id=completed["trackingId"])
    messages = OutboxMessage.objects.count()
    refused = api.post("/v1/catalog/upload/complete", complete_body(completed, **change), format="json")
    error = assert_error(refused, 409, "conflict")
    assert error["details"]["completedWith"] == {
        "photo_key": completed["photoKey"],
        "audio_key": completed["audioKey"],
        "language": "hi",
        "priority": "normal",
    }
    after = Submission.objects.get(tracking_id=completed["trackingId"])
    assert (after.version, after.language, after.priority) == (before.version, before.language, before.priority)
    assert OutboxMessage.objects.count() == messages


def test_completing_again_with_the_same_values_is_202_and_sends_nothing_more(
    api: APIClient, completed: dict[str, str]
) -> None:
    messages = OutboxMessage.objects.count()
    again = api.post("/v1/catalog/upload/complete", complete_body(completed), format="json")
    assert again.status_code == 202, again.content
    assert OutboxMessage.objects.count() == messages
