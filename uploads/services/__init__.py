"""Business rules of uploads. Entry points (views, admin, commands, tasks) call these."""

from uploads.services.closing import media_abort
from uploads.services.completion import media_complete
from uploads.services.drift import MirrorOff, ReconcileReport, mirror_reconcile
from uploads.services.media import (
    InitiatedUpload,
    SignedPart,
    media_initiate,
    media_record_part,
    media_sign_parts,
)
from uploads.services.outbox import outbox_deliver, outbox_enqueue, outbox_relay, outbox_retry_failed
from uploads.services.parts import ClaimedPart
from uploads.services.pipeline import PipelineReport, submission_record_pipeline_event
from uploads.services.progress import UploadProgress, media_progress
from uploads.services.pullback import PullReport, mirror_pull
from uploads.services.staff import (
    STAFF_ACTIONS,
    StaffAction,
    staff_action_refusal,
    staff_action_run,
    submission_close,
    submission_resend_status,
    submission_retry_messages,
)
from uploads.services.submissions import submission_complete, submission_reprocess
from uploads.services.sweeps import SweepReport, sweep_expired
from uploads.services.uppy import media_initiate_uppy, uppy_meta_value

__all__ = [
    "STAFF_ACTIONS",
    "ClaimedPart",
    "InitiatedUpload",
    "MirrorOff",
    "PipelineReport",
    "PullReport",
    "ReconcileReport",
    "SignedPart",
    "StaffAction",
    "SweepReport",
    "UploadProgress",
    "media_abort",
    "media_complete",
    "media_initiate",
    "media_initiate_uppy",
    "media_progress",
    "media_record_part",
    "media_sign_parts",
    "mirror_pull",
    "mirror_reconcile",
    "outbox_deliver",
    "outbox_enqueue",
    "outbox_relay",
    "outbox_retry_failed",
    "staff_action_refusal",
    "staff_action_run",
    "submission_close",
    "submission_complete",
    "submission_record_pipeline_event",
    "submission_reprocess",
    "submission_resend_status",
    "submission_retry_messages",
    "sweep_expired",
    "uppy_meta_value",
]
