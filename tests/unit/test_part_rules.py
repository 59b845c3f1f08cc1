"""The rules that decide whether the parts at storage make a complete open (Uppy) upload."""

import pytest
from django.conf import settings

from uploads.errors import InvalidInput, PartsMismatch, TooLarge
from uploads.services.parts import ClaimedPart, parts_check_claimed, parts_of_open_upload
from uploads.storage import StoredPart

MIN = settings.UPLOADS_MIN_PART_SIZE


def part(number: int, size: int, etag: str = "") -> StoredPart:
    return StoredPart(part_number=number, size=size, etag=etag or f'"{number:032x}"')


def test_one_part_of_any_size_is_a_complete_upload() -> None:
    assert parts_of_open_upload(stored=[part(1, 1)], max_bytes=10, kind="audio") == [part(1, 1)]


def test_only_the_last_part_may_be_below_the_minimum() -> None:
    stored = [part(2, MIN), part(1, MIN), part(3, 1)]
    assert [p.part_number for p in parts_of_open_upload(stored=stored, max_bytes=10 * MIN, kind="audio")] == [1, 2, 3]
    with pytest.raises(PartsMismatch) as caught:
        parts_of_open_upload(stored=[part(1, MIN - 1), part(2, 1)], max_bytes=10 * MIN, kind="audio")
    assert caught.value.details["tooSmallParts"] == [{"partNumber": 1, "size": MIN - 1, "minSize": MIN}]


def test_a_gap_or_no_part_at_all_is_missing_parts() -> None:
    with pytest.raises(PartsMismatch) as caught:
        parts_of_open_upload(stored=[part(1, MIN), part(4, 1)], max_bytes=10 * MIN, kind="audio")
    assert caught.value.details["missingParts"] == [2, 3]
    with pytest.raises(PartsMismatch):
        parts_of_open_upload(stored=[], max_bytes=10, kind="audio")


def test_the_total_is_held_to_the_limit_inclusive() -> None:
    stored = [part(1, MIN), part(2, 5)]
    assert parts_of_open_upload(stored=stored, max_bytes=MIN + 5, kind="photo")
    with pytest.raises(TooLarge):
        parts_of_open_upload(stored=stored, max_bytes=MIN + 4, kind="photo")


def test_claimed_etags_match_with_or_without_quotes() -> None:
    stored = [part(1, MIN, '"aa"'), part(2, 1, '"bb"')]
    parts_check_claimed(stored=stored, claimed=[ClaimedPart(1, "aa"), ClaimedPart(2, '"bb"')])
    with pytest.raises(PartsMismatch) as caught:
        parts_check_claimed(stored=stored, claimed=[ClaimedPart(1, "aa"), ClaimedPart(2, "cc"), ClaimedPart(3, "dd")])
    assert caught.value.details["differingParts"] == [2, 3]
    assert caught.value.details["storedParts"] == [{"partNumber": 2, "etag": '"bb"', "size": 1}]
    with pytest.raises(InvalidInput):
        parts_check_claimed(stored=stored, claimed=[ClaimedPart(1, "aa"), ClaimedPart(1, "aa")])
