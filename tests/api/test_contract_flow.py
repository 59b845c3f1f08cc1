"""The original three-endpoint contract, end to end on the embedded backend."""

import json
from typing import Any

from django.core.management import call_command

from tests.conftest import put_bytes
from tests.helpers import AUDIO, PHOTO, complete_body, initiate, uploaded_submission


def complete(api: Any, submission: dict[str, str]) -> Any:
    return api.post("/v1/catalog/upload/complete", complete_body(submission), format="json")


def queued_messages(capsys: Any) -> list[dict[str, Any]]:
    capsys.readouterr()
    call_command("local_queue")
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_initiate_returns_contract_fields_and_a_key_under_the_tenant(api: Any) -> None:
    body = initiate(api, content_type="image/jpeg", file_size=10)
    assert {"trackingId", "uploadUrl", "expiresAt", "key", "mediaId", "headers", "uploadMethod"} == set(body)
    assert body["key"] == f"tenant_a/art_1/{body['trackingId']}/{body['mediaId']}.jpg"
    assert body["uploadUrl"].startswith("http://testserver/storage/put/")
    assert body["headers"] == {"Content-Type": "image/jpeg", "If-None-Match": "*"}
    assert body["uploadMethod"] == "PUT"


def test_complete_queues_one_processing_message(api: Any, capsys: Any, django_capture_on_commit_callbacks: Any) -> None:
    submission = uploaded_submission(api)
    tracking_id, photo_key = submission["trackingId"], submission["photoKey"]
    with django_capture_on_commit_callbacks(execute=True):
        response = complete(api, submission)
    assert response.status_code == 202, response.content
    assert response.json() == {
        "status": "accepted",
        "trackingId": tracking_id,
        "message": "Upload complete; the submission is accepted for processing.",
    }
    [message] = queued_messages(capsys)
    body = message["body"]
    assert set(body) == {
        "trackingId",
        "tenantId",
        "artisanId",
        "photoKey",
        "audioKey",
        "language",
        "priority",
        "timestamp",
    }
    assert body["trackingId"] == tracking_id
    assert body["photoKey"].startswith("file:///") and body["photoKey"].endswith(photo_key)
    assert message["groupId"] == "tenant_a"
    assert message["attributes"] == {
        "tenantId": "tenant_a",
        "language": "hi",
        "priority": "normal",
        "requestId": response["X-Request-ID"],  # the request that completed it
    }
    status = api.get(f"/v1/catalog/status/{tracking_id}").json()
    assert status["stage"] == "queued"


def test_complete_is_idempotent(api: Any, capsys: Any, django_capture_on_commit_callbacks: Any) -> None:
    submission = uploaded_submission(api)
    with django_capture_on_commit_callbacks(execute=True):
        first = complete(api, submission)
        second = complete(api, submission)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert len(queued_messages(capsys)) == 1


def test_complete_before_bytes_arrive_is_409_and_changes_nothing(api: Any, capsys: Any) -> None:
    photo = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    audio = initiate(api, content_type="audio/ogg", file_size=len(AUDIO), tracking_id=photo["trackingId"])
    assert put_bytes(photo["uploadUrl"], PHOTO, photo["headers"]).status_code == 200
    response = complete(api, {"trackingId": photo["trackingId"], "photoKey": photo["key"], "audioKey": audio["key"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "object_missing"
    assert queued_messages(capsys) == []
    status = api.get(f"/v1/catalog/status/{photo['trackingId']}").json()
    assert status["stage"] == "initiated"
    assert [f["status"] for f in status["files"]] == ["pending", "pending"]  # not even the photo


def test_status_of_other_tenants_tracking_id_is_404(api: Any, other_api: Any) -> None:
    tracking_id = initiate(api, content_type="image/jpeg", file_size=10)["trackingId"]
    response = other_api.get(f"/v1/catalog/status/{tracking_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
