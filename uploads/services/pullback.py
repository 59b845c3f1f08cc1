"""Processing reports the pipeline writes into the catalog record instead of calling the events
endpoint, pulled back periodically and applied by the same service as that endpoint (same stage
rules, an Event, a status update, a mirror write).

Only submissions the pipeline holds (queued or processing) are read, so the cost of a pull grows
with the work in flight, not with history. A report is identified by its stage and its
`processingUpdatedAt`: the same report read twice is applied once, and a report older than the
last one applied (a delayed or replayed write) is ignored."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from uploads.dynamodb import MAX_BATCH_GET, batch_get, mirror_tables
from uploads.errors import Conflict, InvalidInput
from uploads.models import Event, Stage, Submission
from uploads.services.mirror import PIPELINE_ATTRIBUTES
from uploads.services.pipeline import submission_record_pipeline_event

logger = logging.getLogger(__name__)

PULLED_FROM = (Stage.QUEUED, Stage.PROCESSING)
ACTOR = "pipeline (DynamoDB)"
EVENT_PREFIX = "dynamodb:"
# The API's bounds on the same fields (uploads.api.serializers.PipelineEventInput).
MAX_MESSAGE = 500
MAX_CATALOG_ID = 128


@dataclass(frozen=True)
class ProcessingReport:
    stage: str
    reported_at: datetime
    message: str
    catalog_id: str
    error_details: dict[str, Any] | None

    @property
    def event_id(self) -> str:
        return f"{EVENT_PREFIX}{self.stage}@{self.reported_at.isoformat()}"


@dataclass
class PullReport:
    checked: int = 0  # active submissions read
    applied: int = 0  # reports that changed a submission
    ignored: int = 0  # stale, backward or malformed reports

    def counts(self) -> dict[str, int]:
        return {"checked": self.checked, "applied": self.applied, "ignored": self.ignored}


def mirror_pull(*, page_size: int = MAX_BATCH_GET) -> PullReport:
    """Reads the catalog records of the submissions in the pipeline, a page at a time (one
    BatchGetItem per page), and applies each newer report. Raises DynamoDBUnavailable; what was
    applied before stays applied, and the next pull goes on from there."""
    report = PullReport()
    tables = mirror_tables()
    if tables is None:
        return report
    active = Submission.objects.filter(stage__in=PULLED_FROM).order_by("pk")
    after = 0
    while page := list(active.filter(pk__gt=after).only("pk", "tracking_id", "stage", "stage_message")[:page_size]):
        after = page[-1].pk
        items = batch_get(
            table=tables.catalog,
            keys=[{"trackingId": submission.tracking_id} for submission in page],
            attributes=("trackingId", *PIPELINE_ATTRIBUTES),
        )
        by_tracking_id = {item["trackingId"]: item for item in items}
        last_applied = _last_applied(page)
        for submission in page:
            report.checked += 1
            item = by_tracking_id.get(submission.tracking_id)
            if item is None or "processingStage" not in item:
                continue
            outcome = _apply(submission, item, last_applied.get(submission.pk))
            if outcome is True:
                report.applied += 1
            elif outcome is False:
                report.ignored += 1
    return report


def _apply(submission: Submission, item: dict[str, Any], last_applied: datetime | None) -> bool | None:
    """True: applied. False: ignored (malformed, stale or backward). None: nothing new."""
    report = _report_of(item)
    if report is None:
        logger.warning("catalog record %s: malformed processing report %r; ignored", submission.tracking_id, item)
        return False
    if last_applied is not None and report.reported_at <= last_applied:
        return None if report.reported_at == last_applied else _ignored(submission, report, "older than the last")
    if report.stage == submission.stage and report.message in ("", submission.stage_message):
        return None  # what the submission already shows (the events endpoint got there first)
    try:
        submission_record_pipeline_event(
            submission=submission,
            event_id=report.event_id,
            stage=report.stage,
            message=report.message,
            catalog_id=report.catalog_id,
            error_details=report.error_details,
            actor=ACTOR,
        )
    except (Conflict, InvalidInput) as exc:
        return _ignored(submission, report, str(exc))
    return True


def _ignored(submission: Submission, report: ProcessingReport, why: str) -> bool:
    logger.info("catalog record %s: report %s ignored: %s", submission.tracking_id, report.event_id, why)
    return False


def _report_of(item: dict[str, Any]) -> ProcessingReport | None:
    stage, at = item.get("processingStage"), item.get("processingUpdatedAt")
    message, catalog_id = item.get("processingMessage", ""), item.get("catalogId", "")
    details = item.get("errorDetails")
    reported_at = parse_datetime(at) if isinstance(at, str) else None
    if (
        not isinstance(stage, str)
        or reported_at is None
        or reported_at.tzinfo is None
        or not isinstance(message, str)
        or len(message) > MAX_MESSAGE
        or not isinstance(catalog_id, str)
        or len(catalog_id) > MAX_CATALOG_ID
        or not (details is None or isinstance(details, dict))
    ):
        return None
    return ProcessingReport(
        stage=stage, reported_at=reported_at, message=message, catalog_id=catalog_id, error_details=details
    )


def _last_applied(page: list[Submission]) -> dict[int, datetime]:
    """When the pipeline wrote the last report applied to each submission of the page: one query."""
    latest: dict[int, datetime] = {}
    pulled = Event.objects.filter(submission__in=page, external_id__startswith=EVENT_PREFIX)
    for submission_id, event_id in pulled.values_list("submission_id", "external_id"):
        reported_at = parse_datetime(event_id.partition("@")[2])
        if reported_at is not None and (submission_id not in latest or reported_at > latest[submission_id]):
            latest[submission_id] = reported_at
    return latest
