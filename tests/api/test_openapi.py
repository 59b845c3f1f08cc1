"""Real responses, success and error, conform to the OpenAPI document served at /v1/schema/."""

from typing import Any

from rest_framework.test import APIClient

from tests.api.openapi import assert_matches_schema, openapi_document
from tests.conftest import put_bytes

PHOTO = b"\x89PNG" + b"x" * 1000
AUDIO = b"RIFF" + b"w" * 1500
BIG = 300 * 1024 + 17  # above the test multipart threshold (256 KiB)


def test_schema_documents_every_v1_endpoint() -> None:
    paths = set(openapi_document()["paths"])
    assert paths == {
        "/v1/catalog/upload/initiate",
        "/v1/catalog/upload/complete",
        "/v1/catalog/status/{tracking_id}",
        "/v1/catalog/status/{tracking_id}/events",
        "/v1/catalog/uploads",
        "/v1/catalog/uploads/{media_id}",
        "/v1/catalog/uploads/{media_id}/parts",
        "/v1/catalog/uploads/{media_id}/parts/{part_number}",
        "/v1/catalog/uploads/{media_id}/complete",
    }
    assert openapi_document()["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_swagger_ui_is_served() -> None:
    response = APIClient().get("/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_contract_responses_match_schema(api: Any, django_capture_on_commit_callbacks: Any) -> None:
    photo = api.post(
        "/v1/catalog/upload/initiate", {"artisanId": "a1", "contentType": "image/png", "fileSize": len(PHOTO)}
    )
    assert_matches_schema(photo, "/v1/catalog/upload/initiate", "post")
    tracking_id = photo.json()["trackingId"]
    audio = api.post(
        "/v1/catalog/upload/initiate",
        {"artisanId": "a1", "contentType": "audio/wav", "trackingId": tracking_id, "fileSize": len(AUDIO)},
    )
    put_bytes(photo.json()["uploadUrl"], PHOTO, photo.json()["headers"])
    put_bytes(audio.json()["uploadUrl"], AUDIO, audio.json()["headers"])

    status = api.get(f"/v1/catalog/status/{tracking_id}")
    assert_matches_schema(status, "/v1/catalog/status/{tracking_id}", "get")

    body = {
        "trackingId": tracking_id,
        "photoKey": photo.json()["key"],
        "audioKey": audio.json()["key"],
        "language": "ta",
    }
    with django_capture_on_commit_callbacks(execute=True):
        completed = api.post("/v1/catalog/upload/complete", body)
    assert completed.status_code == 202
    assert_matches_schema(completed, "/v1/catalog/upload/complete", "post")
    assert_matches_schema(api.get(f"/v1/catalog/status/{tracking_id}"), "/v1/catalog/status/{tracking_id}", "get")


def test_multipart_responses_match_schema(api: Any) -> None:
    created = api.post("/v1/catalog/uploads", {"artisanId": "a1", "contentType": "audio/mpeg", "fileSize": BIG})
    assert created.status_code == 201
    assert_matches_schema(created, "/v1/catalog/uploads", "post")
    media_id = created.json()["mediaId"]
    detail = "/v1/catalog/uploads/{media_id}"

    signed = api.post(f"/v1/catalog/uploads/{media_id}/parts", {"partNumbers": [1, 2]}, format="json")
    assert signed.status_code == 200, signed.json()
    assert_matches_schema(signed, detail + "/parts", "post")
    etag = put_bytes(signed.json()["parts"][0]["url"], b"z" * signed.json()["parts"][0]["size"]).headers["ETag"]
    recorded = api.put(f"/v1/catalog/uploads/{media_id}/parts/1", {"etag": etag, "size": 64 * 1024}, format="json")
    assert_matches_schema(recorded, detail + "/parts/{part_number}", "put")

    progress = api.get(f"/v1/catalog/uploads/{media_id}", {"urls": 2})
    assert_matches_schema(progress, detail, "get")

    mismatch = api.post(f"/v1/catalog/uploads/{media_id}/complete")
    assert mismatch.status_code == 409
    assert_matches_schema(mismatch, detail + "/complete", "post")

    aborted = api.delete(f"/v1/catalog/uploads/{media_id}")
    assert_matches_schema(aborted, detail, "delete")


def test_single_upload_and_its_completion_match_schema(api: Any) -> None:
    created = api.post("/v1/catalog/uploads", {"artisanId": "a1", "contentType": "image/webp", "fileSize": 10})
    assert_matches_schema(created, "/v1/catalog/uploads", "post")
    put_bytes(created.json()["uploadUrl"], b"0123456789", created.json()["headers"])
    completed = api.post(f"/v1/catalog/uploads/{created.json()['mediaId']}/complete")
    assert completed.status_code == 200
    assert_matches_schema(completed, "/v1/catalog/uploads/{media_id}/complete", "post")


def test_error_responses_match_schema(api: Any, other_api: Any) -> None:
    bad = api.post("/v1/catalog/uploads", {"artisanId": "a1", "contentType": "text/html", "fileSize": 10})
    assert bad.status_code == 415
    assert_matches_schema(bad, "/v1/catalog/uploads", "post")
    missing = api.get("/v1/catalog/status/trk_000000000000000000000000")
    assert_matches_schema(missing, "/v1/catalog/status/{tracking_id}", "get")
    invalid = api.post("/v1/catalog/upload/initiate", {"contentType": "image/png"})
    assert invalid.status_code == 400
    assert_matches_schema(invalid, "/v1/catalog/upload/initiate", "post")


def test_schema_generates_without_warnings_and_validates(tmp_path: Any) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
