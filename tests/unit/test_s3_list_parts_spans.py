"""list_parts on S3 reads the pages after a truncated first one as concurrent spans of part
numbers. Pages of 3 and a last part number of 20 stand in for S3's 1,000 and 10,000, so a few
parts cross many span boundaries."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.s3.models import FakeMultipart, S3Backend

from tests.conftest import BUCKET, REGION
from uploads.storage import S3Storage, StoredPart, UploadNotFound
from uploads.storage import s3 as s3_module

KEY = "tenant_a/art_1/trk_0123456789abcdef/med_0123456789abcdef.bin"


@pytest.fixture(autouse=True)
def markers_are_part_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 reads PartNumberMarker as a position in the list of parts and calls a page
    truncated by counting parts: S3's answers only while no part is missing. S3 documents the
    marker as a part number, so moto is made to answer that way here."""

    def parts_after(upload: FakeMultipart, part_number_marker: int, max_parts: int) -> Iterator[Any]:
        numbers = [n for n in upload.partlist if n > part_number_marker][:max_parts]
        return (upload.parts[n] for n in numbers)

    def more_after(backend: S3Backend, bucket_name: str, multipart_id: str, next_part_number_marker: int) -> bool:
        partlist = backend.get_bucket(bucket_name).multiparts[multipart_id].partlist
        return any(n > int(next_part_number_marker) for n in partlist)

    monkeypatch.setattr(FakeMultipart, "list_parts", parts_after)
    monkeypatch.setattr(S3Backend, "is_truncated", more_after)


@pytest.fixture
def storage(s3: Any, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    monkeypatch.setattr(s3_module, "PARTS_PAGE", 3)
    monkeypatch.setattr(s3_module, "LAST_PART_NUMBER", 20)
    return S3Storage(bucket=BUCKET, region=REGION)


@pytest.fixture
def on_list_parts(storage: S3Storage) -> Iterator[Callable[[Callable[[dict[str, Any]], None]], None]]:
    """Runs a hook on every ListParts request's parameters before it is sent."""
    hooks: list[Callable[[dict[str, Any]], None]] = []

    def run(params: dict[str, Any], **_: Any) -> None:
        for hook in hooks:
            hook(params)

    storage.client.meta.events.register("provide-client-params.s3.ListParts", run)
    yield hooks.append
    storage.client.meta.events.unregister("provide-client-params.s3.ListParts", run)


def upload_with_parts(storage: S3Storage, s3: Any, numbers: list[int]) -> str:
    upload_id = storage.create_multipart(key=KEY, content_type="application/octet-stream")
    for number in numbers:
        s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=number, Body=bytes([number]) * number)
    return upload_id


def listed_in_one_page(s3: Any, upload_id: str) -> list[StoredPart]:
    page = s3.list_parts(Bucket=BUCKET, Key=KEY, UploadId=upload_id, MaxParts=1000)
    assert not page["IsTruncated"]
    return [StoredPart(part_number=p["PartNumber"], size=p["Size"], etag=p["ETag"]) for p in page["Parts"]]


def test_parts_across_spans_list_as_one_sequential_read_does(storage: S3Storage, s3: Any) -> None:
    """Gaps on both sides of span boundaries (3, 6, 9, ...) and parts in the last span."""
    numbers = [1, 2, 3, 4, 6, 7, 9, 10, 13, 16, 17, 19, 20]
    upload_id = upload_with_parts(storage, s3, numbers)

    parts = storage.list_parts(key=KEY, upload_id=upload_id)

    assert parts == listed_in_one_page(s3, upload_id)
    assert [p.part_number for p in parts] == numbers


def test_a_page_s3_returns_short_is_followed_to_its_span_end(
    storage: S3Storage, s3: Any, on_list_parts: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    numbers = list(range(1, 21))
    upload_id = upload_with_parts(storage, s3, numbers)
    on_list_parts(lambda params: params.update(MaxParts=2))  # S3 may cap a page below what was asked

    parts = storage.list_parts(key=KEY, upload_id=upload_id)

    assert parts == listed_in_one_page(s3, upload_id)
    assert [p.part_number for p in parts] == numbers


def test_an_upload_aborted_mid_listing_is_upload_not_found(
    storage: S3Storage, s3: Any, on_list_parts: Callable[[Callable[[dict[str, Any]], None]], None]
) -> None:
    upload_id = upload_with_parts(storage, s3, list(range(1, 21)))
    span_starts = {0, 2, 3, 6, 9, 12, 15, 18}  # the first page ends at 2 when pages are capped at 2

    def abort_at_a_follow_up(params: dict[str, Any]) -> None:
        params["MaxParts"] = 2
        if params["PartNumberMarker"] not in span_starts:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload_id)

    on_list_parts(abort_at_a_follow_up)

    with pytest.raises(UploadNotFound):
        storage.list_parts(key=KEY, upload_id=upload_id)
