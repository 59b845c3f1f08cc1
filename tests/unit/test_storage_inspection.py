"""Staff triage reads storage live: a preview of a finished file only, and storage's own view of
a file beside the database's, differences marked; storage failing is shown, never raised."""

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.conftest import put_bytes
from tests.helpers import (
    MULTIPART_SIZE,
    PART,
    PHOTO,
    create_upload,
    initiate,
    payload,
    put_part,
    quoted_md5,
    sign_parts,
    split,
)
from uploads.errors import StorageUnavailable
from uploads.models import MediaStatus, MediaUpload, UploadPart
from uploads.services.inspection import (
    FieldComparison,
    PartComparison,
    media_preview_url,
    media_storage_view,
)
from uploads.storage import LocalStorage, StorageError, get_storage

DATA = payload(MULTIPART_SIZE, seed=7)
CHUNKS = split(DATA, PART)  # five parts, the last one short


def send_parts(api: APIClient, media_id: str, numbers: list[int], *, record: list[int]) -> None:
    """PUTs `numbers` to storage and records `record` in the database, as a client reports them."""
    signed = sign_parts(api, media_id, numbers)
    for number in numbers:
        put_part(signed[number], CHUNKS[number - 1])
    for number in record:
        body = {"etag": quoted_md5(CHUNKS[number - 1]), "size": len(CHUNKS[number - 1])}
        response = api.put(f"/v1/catalog/uploads/{media_id}/parts/{number}", body, format="json")
        assert response.status_code == 200, response.content


def multipart_media(api: APIClient, numbers: list[int], *, record: list[int]) -> MediaUpload:
    created = create_upload(api, file_size=len(DATA))
    send_parts(api, created["mediaId"], numbers, record=record)
    return MediaUpload.objects.get(media_id=created["mediaId"])


def finished_photo(api: APIClient) -> MediaUpload:
    started = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    assert put_bytes(started["uploadUrl"], PHOTO, started["headers"]).status_code == 200
    assert api.post(f"/v1/catalog/uploads/{started['mediaId']}/complete").status_code == 200
    return MediaUpload.objects.get(media_id=started["mediaId"])


def states(parts: tuple[PartComparison, ...]) -> dict[int, str]:
    return {p.part_number: p.state for p in parts}


def field(fields: tuple[FieldComparison, ...], name: str) -> FieldComparison:
    return next(f for f in fields if f.name == name)


# --- preview ------------------------------------------------------------------------------------
def test_preview_of_a_finished_photo_serves_its_bytes(api: APIClient, other_api: APIClient) -> None:
    media = finished_photo(api)
    finished_photo(other_api)
    url = media_preview_url(media=media)
    assert url is not None
    response: Any = Client().get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PHOTO
    assert response["Content-Type"] == "image/jpeg"


def test_preview_lives_as_long_as_the_admin_setting(api: APIClient, settings: Any) -> None:
    settings.ADMIN_PREVIEW_SECONDS = -1
    url = media_preview_url(media=finished_photo(api))
    assert url is not None
    assert Client().get(url).status_code == 403


def test_no_preview_for_a_pending_or_aborted_file(api: APIClient) -> None:
    media = multipart_media(api, [1], record=[1])
    assert media_preview_url(media=media) is None
    assert api.delete(f"/v1/catalog/uploads/{media.media_id}").status_code in (200, 204)
    media.refresh_from_db()
    assert media_preview_url(media=media) is None


# --- a pending multipart upload: ListParts beside the recorded parts ----------------------------
def test_matching_upload_has_no_difference_and_lists_the_parts_still_to_come(
    api: APIClient, other_api: APIClient
) -> None:
    media = multipart_media(api, [1, 2], record=[1, 2])
    multipart_media(other_api, [1, 2, 3], record=[3])  # another tenant's upload stays out of this view
    view = media_storage_view(media=media)
    assert (view.kind, view.reachable, view.error, view.differences) == ("parts", True, "", 0)
    assert states(view.parts) == {1: "same", 2: "same"}
    assert view.parts[0] == PartComparison(
        part_number=1,
        db_size=PART,
        db_etag=quoted_md5(CHUNKS[0]).strip('"'),
        storage_size=PART,
        storage_etag=quoted_md5(CHUNKS[0]).strip('"'),
        state="same",
    )
    assert view.missing_parts == (3, 4, 5)
    assert field(view.fields, "multipart upload").same


def test_a_recorded_part_storage_lacks_is_only_in_database(api: APIClient) -> None:
    media = multipart_media(api, [1], record=[1, 2])
    view = media_storage_view(media=media)
    assert states(view.parts) == {1: "same", 2: "only in database"}
    assert view.differences == 1
    assert view.missing_parts == (2, 3, 4, 5)


def test_a_part_storage_holds_unrecorded_is_only_in_storage(api: APIClient) -> None:
    media = multipart_media(api, [1, 2], record=[1])
    view = media_storage_view(media=media)
    assert states(view.parts) == {1: "same", 2: "only in storage"}
    assert (view.parts[1].db_size, view.parts[1].storage_size) == (None, PART)
    assert view.differences == 1


def test_a_part_of_another_size_or_etag_differs(api: APIClient) -> None:
    media = multipart_media(api, [1, 2], record=[1, 2])
    UploadPart.objects.filter(media=media, part_number=1).update(size=PART - 1)
    UploadPart.objects.filter(media=media, part_number=2).update(etag='"0123"')
    view = media_storage_view(media=media)
    assert states(view.parts) == {1: "differs", 2: "differs"}
    assert view.differences == 2


def test_quoted_and_bare_etags_are_the_same(api: APIClient) -> None:
    media = multipart_media(api, [1], record=[1])
    UploadPart.objects.filter(media=media).update(etag=quoted_md5(CHUNKS[0]).strip('"'))
    assert states(media_storage_view(media=media).parts) == {1: "same"}


def test_the_database_parts_are_read_in_one_query(api: APIClient) -> None:
    media = multipart_media(api, [1, 2, 3], record=[1, 2, 3])
    with CaptureQueriesContext(connection) as queries:
        media_storage_view(media=media)
    assert len(queries.captured_queries) == 1


def test_a_pending_upload_gone_at_storage_is_said_so(api: APIClient) -> None:
    media = multipart_media(api, [1], record=[1])
    get_storage().abort_multipart(key=media.object_key, upload_id=media.multipart_upload_id)
    view = media_storage_view(media=media)
    assert view.reachable
    assert media.multipart_upload_id in view.error
    assert states(view.parts) == {1: "only in database"}
    assert not field(view.fields, "multipart upload").same
    assert view.differences == 2


def test_a_released_upload_holds_nothing_at_storage(api: APIClient) -> None:
    media = multipart_media(api, [1, 2], record=[1])
    assert api.delete(f"/v1/catalog/uploads/{media.media_id}").status_code in (200, 204)
    media.refresh_from_db()
    assert media.status == MediaStatus.ABORTED and media.released_at is not None
    view = media_storage_view(media=media)
    assert (view.kind, view.reachable, view.error, view.parts, view.differences) == ("parts", True, "", (), 0)
    assert field(view.fields, "multipart upload").storage == "absent"
    assert field(view.fields, "object").storage == "absent"


def test_a_released_upload_whose_parts_are_still_at_storage_differs(api: APIClient) -> None:
    media = multipart_media(api, [1], record=[1])
    MediaUpload.objects.filter(pk=media.pk).update(status=MediaStatus.ABORTED, released_at=media.created_at)
    media.refresh_from_db()
    view = media_storage_view(media=media)
    upload = field(view.fields, "multipart upload")
    assert (upload.database, upload.storage, upload.same) == ("released", "open", False)
    assert view.differences == 1


# --- a finished file or a single PUT: HEAD beside the row -------------------------------------
def test_a_finished_object_matches_its_row(api: APIClient, other_api: APIClient) -> None:
    media = finished_photo(api)
    finished_photo(other_api)
    view = media_storage_view(media=media)
    assert (view.kind, view.reachable, view.differences) == ("object", True, 0)
    assert view.stored_object is not None and view.stored_object.size == len(PHOTO)
    assert {f.name for f in view.fields} == {"object", "size", "ETag", "declared size", "content type"}
    assert all(f.same for f in view.fields)


def test_a_finished_object_of_another_size_than_recorded_differs(api: APIClient) -> None:
    media = finished_photo(api)
    MediaUpload.objects.filter(pk=media.pk).update(size=len(PHOTO) + 1)
    media.refresh_from_db()
    view = media_storage_view(media=media)
    size = field(view.fields, "size")
    assert (size.database, size.storage, size.same) == (len(PHOTO) + 1, len(PHOTO), False)
    assert view.differences == 1


def test_a_finished_object_gone_from_storage_differs(api: APIClient) -> None:
    media = finished_photo(api)
    get_storage().delete(key=media.object_key)
    view = media_storage_view(media=media)
    assert (view.stored_object, view.differences) == (None, 1)
    assert field(view.fields, "object") == FieldComparison("object", "stored", "absent", False)


def test_a_single_put_not_yet_sent_is_no_difference(api: APIClient) -> None:
    started = initiate(api, content_type="image/jpeg", file_size=len(PHOTO))
    view = media_storage_view(media=MediaUpload.objects.get(media_id=started["mediaId"]))
    assert (view.kind, view.differences) == ("object", 0)
    assert field(view.fields, "object").storage == "absent"


# --- storage failing ------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [StorageError("connection refused"), OSError(13, "Permission denied")])
def test_storage_unreachable_is_shown_not_raised(api: APIClient, monkeypatch: Any, failure: Exception) -> None:
    media = multipart_media(api, [1], record=[1])
    photo = finished_photo(api)

    def fail(self: LocalStorage, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(LocalStorage, "list_parts", fail)
    monkeypatch.setattr(LocalStorage, "head", fail)
    for kind, media_ in (("parts", media), ("object", photo)):
        view = media_storage_view(media=media_)
        assert (view.kind, view.reachable, view.parts, view.fields) == (kind, False, (), ())
        assert "refused" in view.error or "Permission denied" in view.error


def test_storage_unavailable_from_the_backend_is_shown_not_raised(api: APIClient, monkeypatch: Any) -> None:
    photo = finished_photo(api)

    def unavailable(self: LocalStorage, **kwargs: Any) -> None:
        raise StorageUnavailable("Storage is unavailable; try again shortly.", details={"reason": "timeout"})

    monkeypatch.setattr(LocalStorage, "head", unavailable)
    view = media_storage_view(media=photo)
    assert not view.reachable
    assert view.error == "Storage is unavailable; try again shortly. (timeout)"
