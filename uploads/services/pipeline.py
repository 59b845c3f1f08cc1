"""What the processing pipeline reports back. Reports may arrive twice, late or out of order:
a repeated eventId changes nothing, and a report that would move a submission backwards
(completed → processing) is refused, so the stage only ever moves forward."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from uploads.errors import Conflict, InvalidInput
from uploads.json_bounds import json_check_bounded
from uploads.models import Event, Stage, Submission
from uploads.services.stages import submission_advance

# Where each reported stage may come from. The pipeline can report before the relay has marked
# the submission queued (it reads the queue as soon as the message lands), so uploaded counts.
IN_PIPELINE = (Stage.UPLOADED, Stage.QUEUED, Stage.PROCESSING)
REPORTED_FROM: dict[str, tuple[Stage, ...]] = {
    Stage.PROCESSING: IN_PIPELINE,
    Stage.COMPLETED: IN_PIPELINE,
    Stage.FAILED: IN_PIPELINE,
}
DEFAULT_MESSAGES: dict[str, str] = {
    Stage.PROCESSING: "Processing.",
    Stage.COMPLETED: "Processing complete.",
    Stage.FAILED: "Processing failed.",
}


@dataclass(frozen=True)
class PipelineReport:
    submission: Submission
    accepted: bool  # False: a repeat of an eventId already recorded


def submission_record_pipeline_event(
    *,
    submission: Submission,
    event_id: str,
    stage: str,
    message: str = "",
    catalog_id: str = "",
    error_details: dict[str, Any] | None = None,
    actor: str,
) -> PipelineReport:
    """Applies one report: a stage change with its version bump, Event and status update, or
    nothing at all for a repeat. Reports of one submission are applied one at a time (the row
    lock), so the repeat check and the change cannot interleave."""
    if not event_id:  # every event without an external id has "" there: it would match them all
        raise InvalidInput("eventId is required.", details={"field": "eventId"})
    if stage not in REPORTED_FROM:
        raise InvalidInput(
            f"stage must be one of {', '.join(REPORTED_FROM)}.", details={"field": "stage", "allowed": [*REPORTED_FROM]}
        )
    fields: dict[str, Any] = {}
    if stage == Stage.COMPLETED:
        fields["catalog_id"] = catalog_id
    if stage == Stage.FAILED:
        # Bounded before it is stored: the pull-back's reports come through here too.
        json_check_bounded(error_details, field="errorDetails")
        fields["error_details"] = error_details
    with transaction.atomic():
        current = Submission.objects.select_for_update().get(pk=submission.pk)
        if Event.objects.filter(submission=current, external_id=event_id).exists():
            return PipelineReport(submission=current, accepted=False)
        changed = submission_advance(
            submission_id=current.pk,
            from_stages=REPORTED_FROM[stage],
            to=Stage(stage),
            message=message or DEFAULT_MESSAGES[stage],
            actor=actor,
            action=f"pipeline.{stage}",
            details={"eventId": event_id},
            external_id=event_id,
            **fields,
        )
        if changed is None:
            raise Conflict(
                f"Submission {current.tracking_id} is {current.stage}; it cannot become {stage}.",
                details={"trackingId": current.tracking_id, "from": current.stage, "to": stage},
            )
    return PipelineReport(submission=changed, accepted=True)
