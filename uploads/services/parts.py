"""Which parts at storage make a complete multipart upload: pure rules over storage's own part
list (ListParts), never the client's word. A planned upload (the v1 API) must match its plan
part for part; an open one (stock Uppy chose the part size) must follow S3's rules, made
explicit so the client gets a clear 409/413 instead of S3's EntityTooSmall."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from uploads.errors import InvalidInput, PartsMismatch, TooLarge
from uploads.plan import PartPlan
from uploads.storage import StoredPart


@dataclass(frozen=True)
class ClaimedPart:
    """A part as a client says it sent it (Uppy's completion body)."""

    part_number: int
    etag: str


def parts_of_planned_upload(*, plan: PartPlan, stored: Sequence[StoredPart]) -> list[StoredPart]:
    """Parts 1..part_count, each of the size the plan gives it; extra parts are left out."""
    by_number = {p.part_number: p for p in stored}
    missing = [n for n in range(1, plan.part_count + 1) if n not in by_number]
    wrong = [
        {"partNumber": p.part_number, "expectedSize": plan.size_of(p.part_number), "size": p.size}
        for p in stored
        if p.part_number <= plan.part_count and p.size != plan.size_of(p.part_number)
    ]
    if missing or wrong:
        raise PartsMismatch(
            f"{len(missing)} part(s) missing and {len(wrong)} of the wrong size at storage.",
            details={"missingParts": missing, "wrongSizeParts": wrong, "numParts": plan.part_count},
        )
    return [by_number[n] for n in range(1, plan.part_count + 1)]


def parts_of_open_upload(*, stored: Sequence[StoredPart], max_bytes: int, kind: str) -> list[StoredPart]:
    """Parts 1..N without a gap, each but the last at least the minimum part size (S3's 5 MiB),
    all together within `max_bytes`: checked before storage assembles anything, so an upload
    over the limit keeps its parts for the client to abort."""
    if not stored:
        raise PartsMismatch("No part is at storage yet.", details={"missingParts": [1], "numParts": 0})
    numbers = {p.part_number for p in stored}
    last = max(numbers)
    missing = [n for n in range(1, last + 1) if n not in numbers]
    too_small = [
        {"partNumber": p.part_number, "size": p.size, "minSize": settings.UPLOADS_MIN_PART_SIZE}
        for p in stored
        if p.part_number != last and p.size < settings.UPLOADS_MIN_PART_SIZE
    ]
    if missing or too_small:
        raise PartsMismatch(
            f"{len(missing)} part(s) missing and {len(too_small)} below the minimum part size at storage.",
            details={"missingParts": missing, "tooSmallParts": too_small, "numParts": last},
        )
    total = sum(p.size for p in stored)
    if total > max_bytes:
        raise TooLarge(
            f"A {kind} may be at most {max_bytes} bytes; storage holds {total} for this upload.",
            details={"maxBytes": max_bytes, "size": total},
        )
    return sorted(stored, key=lambda p: p.part_number)


def parts_check_claimed(*, stored: Sequence[StoredPart], claimed: Sequence[ClaimedPart]) -> None:
    """The client's part list must be storage's, ETag for ETag: a client that believes it sent
    other bytes than storage holds (a part re-sent in between, a lost response) is told so,
    rather than handed an object it did not mean."""
    said = {p.part_number: _bare_etag(p.etag) for p in claimed}
    if len(said) != len(claimed):
        raise InvalidInput("Each part number may appear once.", details={"field": "parts"})
    at_storage = {p.part_number: p for p in stored}
    differing = sorted(
        n
        for n in at_storage.keys() | said.keys()
        if (_bare_etag(at_storage[n].etag) if n in at_storage else None) != said.get(n)
    )
    if differing:
        raise PartsMismatch(
            f"{len(differing)} part(s) differ from what storage holds; list the parts and complete again.",
            details={
                "differingParts": differing,
                "storedParts": [
                    {"partNumber": n, "etag": at_storage[n].etag, "size": at_storage[n].size}
                    for n in differing
                    if n in at_storage
                ],
            },
        )


def _bare_etag(etag: str) -> str:
    """S3 quotes ETags; Uppy strips the quotes before it sends them back."""
    return etag.strip().strip('"')
