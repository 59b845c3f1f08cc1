"""The DynamoDB mirror of upload state: Django is the source of truth, the tables a faithful,
versioned copy for the rest of the catalog system.

Each state change of a submission or a file writes, in its own transaction, one outbox row
carrying the item's full owned state and its version; the relay sends it as a conditional
UpdateItem (uploads.dynamodb), so duplicates and reordering never move an item backwards. The
items' attributes are camelCase, like the API's."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from uploads.delivery import SendFailure
from uploads.dynamodb import DynamoDBUnavailable, ItemRejected, Tables, mirror_tables, update_if_newer
from uploads.models import MediaStatus, MediaUpload, OutboxMessage, Strategy, Submission
from uploads.queue import QueueMessage
from uploads.services.outbox import outbox_enqueue
from uploads.storage import get_storage

CATALOG = "catalog"
UPLOAD_STATE = "uploadState"
# What the portal writes; everything else in an item (the pipeline's attributes) is left alone.
CATALOG_ATTRIBUTES = (
    "tenantId", "artisanId", "stage", "message", "photoKey", "audioKey",
    "language", "priority", "createdAt", "updatedAt", "version",
)  # fmt: skip
# The pipeline's processing report on the catalog record: the portal reads these, never writes them.
PIPELINE_ATTRIBUTES = ("processingStage", "processingMessage", "catalogId", "errorDetails", "processingUpdatedAt")
UPLOAD_STATE_ATTRIBUTES = (
    "tenantId", "kind", "key", "bucket", "contentType", "fileSize", "strategy", "partSize", "numParts",
    "completedParts", "bytesUploaded", "status", "createdAt", "expiresAt", "updatedAt", "version",
)  # fmt: skip


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the millisecond: sorts as text, as the byTenant index needs."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def catalog_key(submission: Submission) -> dict[str, str]:
    return {"trackingId": submission.tracking_id}


def catalog_item(submission: Submission) -> dict[str, Any]:
    """The submission as the catalog record holds it; the file keys are the processing message's
    URIs (empty until completion names the files)."""
    storage = get_storage()
    return {
        "tenantId": submission.tenant_id,
        "artisanId": submission.artisan_id,
        "stage": submission.stage,
        "message": submission.stage_message,
        "photoKey": storage.object_uri(submission.photo_key) if submission.photo_key else "",
        "audioKey": storage.object_uri(submission.audio_key) if submission.audio_key else "",
        "language": submission.language,
        "priority": submission.priority,
        "createdAt": iso(submission.created_at),
        "updatedAt": iso(submission.updated_at),
        "version": submission.version,
    }


def upload_state_key(media: MediaUpload) -> dict[str, str]:
    return {"trackingId": media.submission.tracking_id, "mediaId": media.media_id}


def upload_state_item(media: MediaUpload) -> dict[str, Any]:
    """One file's upload state. Its size is fixed whatever the number of parts: a count and a sum,
    never a list of parts."""
    finished = media.status == MediaStatus.UPLOADED
    parts = (media.part_count if media.strategy == Strategy.MULTIPART else 1) if finished else media.parts_recorded
    return {
        "tenantId": media.submission.tenant_id,
        "kind": media.kind,
        "key": media.object_key,
        "bucket": get_storage().bucket,
        "contentType": media.content_type,
        "fileSize": media.size if media.size is not None else media.declared_size,
        "strategy": media.strategy,
        "partSize": media.part_size,
        "numParts": media.part_count,
        "completedParts": parts or 0,
        "bytesUploaded": media.size if finished and media.size is not None else media.bytes_recorded,
        "status": media.status,
        "createdAt": iso(media.created_at),
        "expiresAt": iso(media.expires_at),
        "updatedAt": iso(media.updated_at),
        "version": media.version,
    }


def mirror_submission(submission: Submission, *, dedup_suffix: str = "", repair: bool = False) -> None:
    """Owes the catalog record this submission's current state. Runs inside the transaction of
    the change (the row as it now is, version included); nothing when the mirror is off.
    `repair` (reconcile --fix): the write also replaces an item at the same version."""
    if mirror_tables() is None:
        return
    _enqueue(CATALOG, catalog_key(submission), catalog_item(submission), submission, dedup_suffix, repair)


def mirror_media(media_pk: int, *, dedup_suffix: str = "", repair: bool = False) -> None:
    """Owes the upload-state table this file's current state, read again in the caller's
    transaction so the item and its version are the committed ones."""
    if mirror_tables() is None:
        return
    media = MediaUpload.objects.select_related("submission").get(pk=media_pk)
    _enqueue(UPLOAD_STATE, upload_state_key(media), upload_state_item(media), media.submission, dedup_suffix, repair)


def _enqueue(
    table: str, key: dict[str, str], item: dict[str, Any], submission: Submission, suffix: str, repair: bool = False
) -> None:
    identity = ":".join(key.values())
    body: dict[str, Any] = {"table": table, "key": key, "item": item}
    if repair:
        body["repair"] = True
    outbox_enqueue(
        topic=OutboxMessage.Topic.MIRROR,
        dedup_key=f"mirror:{identity}:v{item['version']}{suffix}",
        message=QueueMessage(body=body),
        submission=submission,
    )


def mirror_send(rows: Sequence[OutboxMessage]) -> dict[int, SendFailure]:
    """The mirror topic's channel: one conditional UpdateItem per row. A failed condition means
    the item already holds this version or a newer one: delivered. DynamoDB down: the rest wait
    their turn, no attempt spent."""
    tables = mirror_tables()
    failures: dict[int, SendFailure] = {}
    down = ""
    for index, row in enumerate(rows):
        if down or tables is None:
            failures[index] = SendFailure(reason=down or "The DynamoDB mirror is off.", attempted=bool(tables))
            continue
        try:
            update_if_newer(
                table=_table_name(tables, row.body["table"]),
                key=row.body["key"],
                attributes=row.body["item"],
                same_version=bool(row.body.get("repair")),
            )
        except ItemRejected as exc:
            failures[index] = SendFailure(reason=str(exc), permanent=True)
        except DynamoDBUnavailable as exc:
            down = str(exc)
            failures[index] = SendFailure(reason=down)
    return failures


def _table_name(tables: Tables, table: str) -> str:
    return tables.catalog if table == CATALOG else tables.upload_state
