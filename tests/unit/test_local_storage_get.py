"""The local backend's signed GET URLs (staff previews), served as S3 serves presigned GETs:
streamed, one byte range at a time, HEAD too; expired, altered or misused URLs are refused."""

import io
from typing import Any

import pytest
from django.core import signing
from django.http import FileResponse
from django.test import Client

from tests.helpers import PHOTO, assert_error
from uploads.storage import LocalStorage, get_storage
from uploads.storage_views import RangeNotSatisfiable, byte_range

KEY = "tenant_a/art_1/trk_000000000000000000000000/med_000000000000000000000000.jpg"
OTHER_TENANTS_KEY = "tenant_b/art_1/trk_000000000000000000000001/med_000000000000000000000001.jpg"
OTHER_PHOTO = b"\xff\xd8\xff" + b"the other tenant's photo"


def store(key: str, data: bytes) -> None:
    signed = get_storage().presign_put(key=key, content_type="image/jpeg", size=len(data), expires_in=60)
    response = Client().put(signed.url, data, content_type="image/jpeg", headers={"If-None-Match": "*"})
    assert response.status_code == 200, response.content


@pytest.fixture
def photos(db: None) -> None:
    store(KEY, PHOTO)
    store(OTHER_TENANTS_KEY, OTHER_PHOTO)


def signed_get(key: str = KEY, expires_in: int = 60, **kwargs: Any) -> str:
    signed = get_storage().presign_get(key=key, expires_in=expires_in, **kwargs)
    assert signed.method == "GET"
    return signed.url


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_signed_get_streams_the_stored_bytes_with_their_type(photos: None) -> None:
    response = Client().get(signed_get())
    assert response.status_code == 200
    assert isinstance(response, FileResponse)  # streamed from disk, never read whole
    assert body_of(response) == PHOTO
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Length"] == str(len(PHOTO))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == get_storage().head(key=KEY).etag


def test_the_signed_content_type_is_the_one_answered(photos: None) -> None:
    response = Client().get(signed_get(content_type="application/octet-stream"))
    assert response["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=10-19", 10, 19), ("bytes=100-", 100, len(PHOTO) - 1), ("bytes=-7", len(PHOTO) - 7, len(PHOTO) - 1)],
)
def test_a_single_range_is_answered_with_206_and_those_bytes(photos: None, header: str, first: int, last: int) -> None:
    response = Client().get(signed_get(), headers={"Range": header})
    assert response.status_code == 206
    assert body_of(response) == PHOTO[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(PHOTO)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Type"] == "image/jpeg"


def test_a_range_past_the_end_is_416_with_the_objects_size(photos: None) -> None:
    response = Client().get(signed_get(), headers={"Range": f"bytes={len(PHOTO)}-"})
    assert_error(response, 416, "range_not_satisfiable")
    assert response["Content-Range"] == f"bytes */{len(PHOTO)}"


def test_several_ranges_or_a_stale_if_range_get_the_whole_object(photos: None) -> None:
    assert Client().get(signed_get(), headers={"Range": "bytes=0-1,5-6"}).status_code == 200
    stale = Client().get(signed_get(), headers={"Range": "bytes=0-1", "If-Range": '"not-its-etag"'})
    assert stale.status_code == 200
    assert body_of(stale) == PHOTO


def test_head_answers_the_headers_without_the_bytes(photos: None) -> None:
    response = Client().head(signed_get())
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(len(PHOTO))
    assert response["Content-Type"] == "image/jpeg"
    ranged = Client().head(signed_get(), headers={"Range": "bytes=0-9"})
    assert (ranged.status_code, ranged["Content-Range"]) == (206, f"bytes 0-9/{len(PHOTO)}")


def test_an_expired_url_is_403(photos: None) -> None:
    assert_error(Client().get(signed_get(expires_in=-1)), 403, "url_expired")


def test_an_altered_url_is_403(photos: None) -> None:
    url = signed_get()
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert_error(Client().get(tampered), 403, "url_invalid")


def test_another_tenants_object_cannot_be_reached_by_editing_the_token(photos: None) -> None:
    token = signed_get().rsplit("/", 1)[-1]
    _, signature = token.rsplit(":", 1)
    claims = signing.loads(token, salt="uploads.storage.local.get")
    forged_payload = signing.dumps({**claims, "k": OTHER_TENANTS_KEY}, salt="x", compress=True).rsplit(":", 1)[0]
    # The key is readable in the token but signed with it: the old signature does not cover the edit.
    response = Client().get(f"/storage/get/{forged_payload}:{signature}")
    assert_error(response, 403, "url_invalid")
    assert OTHER_PHOTO not in response.content


def test_an_upload_url_reads_nothing_and_a_download_url_uploads_nothing(photos: None) -> None:
    put_token = get_storage().presign_put(key=KEY, content_type="image/jpeg", size=3, expires_in=60).url
    assert_error(Client().get(put_token.replace("/storage/put/", "/storage/get/")), 403, "url_invalid")
    get_url = signed_get()
    put = Client().put(
        get_url.replace("/storage/get/", "/storage/put/"),
        b"abc",
        content_type="image/jpeg",
        headers={"If-None-Match": "*"},
    )
    assert_error(put, 403, "url_invalid")


def test_a_url_for_an_object_not_stored_is_404(db: None) -> None:
    assert_error(Client().get(signed_get()), 404, "not_found")


def test_other_methods_are_405(photos: None) -> None:
    response = Client().post(signed_get())
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


def test_the_answer_cannot_run_as_a_page(photos: None) -> None:
    response = Client().get(signed_get())
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_replaced_object_whose_metadata_lags_is_not_served(tmp_path: Any) -> None:
    storage = LocalStorage(tmp_path)
    signed = storage.presign_put(key=KEY, content_type="image/jpeg", size=len(PHOTO), expires_in=60)
    storage.receive_put(
        token=signed.url.rsplit("/", 1)[-1],
        body=io.BytesIO(PHOTO),
        content_length=len(PHOTO),
        content_type="image/jpeg",
        if_none_match="*",
    )
    (tmp_path / "objects" / KEY).write_bytes(b"shorter")
    assert storage.open_object(key=KEY) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-1000", (5, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=9-3", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=1-2,4-5", None),
        ("bytes=", None),
    ],
)
def test_byte_range_reads_one_range_and_ignores_what_it_does_not_understand(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_byte_range_starting_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 100)
