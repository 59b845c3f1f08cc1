"""What the submission page shows: everything that happened to one submission, read in a number
of queries that does not grow with its parts, events or messages."""

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

from uploads.dynamodb import mirror_tables
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Strategy, Submission, UploadPart
from uploads.selectors import media_bytes_received, media_percent_received
from uploads.services import STAFF_ACTIONS, staff_action_refusal
from uploads.services.inspection import StorageView, media_preview_url, media_storage_view
from uploads.services.mirror_inspection import submission_mirror_view

PARTS_PER_PAGE = 100
TIMELINE_LIMIT = 500


@dataclass
class PartRow:
    number: int
    size: int | None = None
    etag: str = ""
    recorded_at: Any = None
    missing_until: int | None = None  # a gap row: parts number..missing_until were never recorded


@dataclass
class FilePanel:
    media: MediaUpload
    parts: Page | None = None
    rows: list[PartRow] = field(default_factory=list)
    missing: str = ""  # "3, 7–9": parts the plan has and the database lacks
    missing_count: int = 0
    preview_url: str | None = None
    storage: StorageView | None = None

    @property
    def received(self) -> int:
        return media_bytes_received(self.media)

    @property
    def percent(self) -> int | None:
        return media_percent_received(self.media)


def submission_page(request: HttpRequest, submission: Submission, *, operable: bool) -> dict[str, Any]:
    """The page's context. `?parts_<mediaId>=N` pages a file's part table; `?storage=<mediaId>`
    asks storage for its own view of that file, `?mirror=1` DynamoDB for the submission's mirror
    items (live calls, so only on demand)."""
    files = submission.media.order_by("created_at")
    panels = [_file_panel(request, media) for media in files]
    processing = submission.outbox.filter(topic=OutboxMessage.Topic.PROCESSING).order_by("-created_at").first()
    actions = []
    if operable:
        for action in STAFF_ACTIONS.values():
            actions.append({"action": action, "refusal": staff_action_refusal(action=action, submission=submission)})
    return {
        "submission": submission,
        "error_details_json": _pretty(submission.error_details),
        "processing_sent": processing,
        "processing_json": _pretty(processing.body) if processing else "",
        "files": panels,
        "events": _timeline(submission),
        "outbox": list(submission.outbox.order_by("-created_at")[:100]),
        "staff_actions": actions,
        "operable": operable,
        "mirror_on": mirror_tables() is not None,
        "mirror": submission_mirror_view(submission=submission) if request.GET.get("mirror") else None,
    }


def _file_panel(request: HttpRequest, media: MediaUpload) -> FilePanel:
    panel = FilePanel(media=media)
    if media.strategy == Strategy.MULTIPART:
        parts = UploadPart.objects.filter(media=media).order_by("part_number")
        panel.parts = Paginator(parts, PARTS_PER_PAGE).get_page(request.GET.get(f"parts_{media.media_id}"))
        last = media.part_count if not panel.parts.has_next() else None
        panel.rows = _rows_with_gaps(list(panel.parts.object_list), first_page=panel.parts.number == 1, last=last)
        if media.part_count:
            numbers = set(parts.values_list("part_number", flat=True))
            missing = [n for n in range(1, media.part_count + 1) if n not in numbers]
            panel.missing, panel.missing_count = _ranges(missing), len(missing)
    if media.status == MediaStatus.UPLOADED:
        panel.preview_url = media_preview_url(media=media)
    if request.GET.get("storage") == media.media_id:
        panel.storage = media_storage_view(media=media)
    return panel


def _rows_with_gaps(parts: list[UploadPart], *, first_page: bool, last: int | None) -> list[PartRow]:
    """The page's parts with a row for each run of missing ones between them (and after the last
    recorded one, up to the plan's `last`, on the final page)."""
    rows: list[PartRow] = []
    expected = 1 if first_page else (parts[0].part_number if parts else 1)
    for part in parts:
        if part.part_number > expected:
            rows.append(PartRow(number=expected, missing_until=part.part_number - 1))
        rows.append(PartRow(number=part.part_number, size=part.size, etag=part.etag, recorded_at=part.updated_at))
        expected = part.part_number + 1
    if last is not None and expected <= last:
        rows.append(PartRow(number=expected, missing_until=last))
    return rows


def _ranges(numbers: list[int]) -> str:
    """[3, 7, 8, 9] → "3, 7–9": ten thousand missing parts read as one line."""
    spans: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            spans.append(str(start) if start == prev else f"{start}–{prev}")
        start = prev = n
    return ", ".join(spans)


def _timeline(submission: Submission) -> list[Event]:
    events = list(submission.events.select_related("media").order_by("-created_at", "-id")[:TIMELINE_LIMIT])
    for event in events:
        event.details_json = json.dumps(event.details, ensure_ascii=False, sort_keys=True)  # type: ignore[attr-defined]
    return events


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
