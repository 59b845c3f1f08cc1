"""Business rules of uploads. Entry points (views, admin, commands, tasks) call these."""

from uploads.services.media import (
    InitiatedUpload,
    SignedPart,
    UploadProgress,
    media_abort,
    media_complete,
    media_initiate,
    media_progress,
    media_record_part,
    media_sign_parts,
)
from uploads.services.outbox import outbox_deliver, outbox_enqueue, outbox_redrive
from uploads.services.submissions import submission_complete

__all__ = [
    "InitiatedUpload",
    "SignedPart",
    "UploadProgress",
    "media_abort",
    "media_complete",
    "media_initiate",
    "media_progress",
    "media_record_part",
    "media_sign_parts",
    "outbox_deliver",
    "outbox_enqueue",
    "outbox_redrive",
    "submission_complete",
]
