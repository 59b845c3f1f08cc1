"""Staff triage reads the DynamoDB mirror itself: the submission's catalog record and its files'
upload-state items, live, beside what the database says they should hold.

A ticket that says "the catalog service shows the old stage" is a question about the mirror, so
the submission page answers it: each item is in sync, behind (with the writes still owed to it
in the outbox), ahead, missing, or different at the same version (written behind the portal's
back). Attributes the portal does not own (the pipeline's processing report) are shown as
written by others. Only the page's own submission's keys are read; nothing is written; and a
DynamoDB that does not answer is an answer too, never a failed page."""

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from uploads import dynamodb
from uploads.dynamodb import DynamoDBUnavailable, mirror_tables
from uploads.models import OutboxMessage, Submission
from uploads.services.mirror import (
    CATALOG,
    PIPELINE_ATTRIBUTES,
    UPLOAD_STATE,
    catalog_item,
    catalog_key,
    upload_state_item,
    upload_state_key,
)

ItemState = Literal["in sync", "behind", "ahead", "missing", "differing", "extra"]

KEY_ATTRIBUTES = ("trackingId", "mediaId")
OWED = (OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING)


@dataclass(frozen=True)
class AttributeRow:
    """One owned attribute as the database says it should be and as the item holds it (None:
    the item lacks it). Maps and lists are shown as JSON text."""

    name: str
    database: Any
    mirror: Any
    differs: bool


@dataclass(frozen=True)
class OtherAttribute:
    """An attribute the portal does not own (the pipeline's): read, never written, never compared."""

    name: str
    value: Any


@dataclass(frozen=True)
class MirrorItem:
    """One item of the mirror: the catalog record, or one file's upload state. `pending`: mirror
    writes for this item the outbox still owes (pending or being sent)."""

    label: str
    table: str
    key: dict[str, str]
    state: ItemState
    database_version: int | None
    mirror_version: Any
    rows: tuple[AttributeRow, ...]
    others: tuple[OtherAttribute, ...]
    pending: int

    @property
    def differences(self) -> int:
        return sum(row.differs for row in self.rows)


@dataclass(frozen=True)
class MirrorView:
    """The mirror's account of one submission, fetched live. `reachable` False: DynamoDB did not
    answer and `error` says why; nothing else is known."""

    reachable: bool
    error: str = ""
    items: tuple[MirrorItem, ...] = ()

    @property
    def out_of_sync(self) -> int:
        return sum(item.state != "in sync" for item in self.items)


def submission_mirror_view(*, submission: Submission) -> MirrorView | None:
    """The catalog record, then one upload-state item per file (and any item DynamoDB holds for
    a file the database does not), each compared with the database. None: the mirror is off.
    Two DynamoDB reads (GetItem, one partition's Query) and one database query, whatever the
    number of parts or pending writes."""
    tables = mirror_tables()
    if tables is None:
        return None
    files = list(submission.media.order_by("created_at"))
    try:
        record = dynamodb.get_item(table=tables.catalog, key=catalog_key(submission))
        states = dynamodb.query_partition(table=tables.upload_state, tracking_id=submission.tracking_id)
    except DynamoDBUnavailable as exc:
        return MirrorView(reachable=False, error=f"DynamoDB did not answer: {exc}")
    pending = _pending_writes(submission)
    by_media = {item.get("mediaId"): item for item in states}
    items = [
        _compare(
            label="Catalog record",
            table=tables.catalog,
            key=catalog_key(submission),
            expected=catalog_item(submission),
            found=record,
            pending=pending[(CATALOG, None)],
        )
    ]
    for media in files:
        items.append(
            _compare(
                label=f"{media.kind.capitalize()} {media.media_id}",
                table=tables.upload_state,
                key=upload_state_key(media),
                expected=upload_state_item(media),
                found=by_media.pop(media.media_id, None),
                pending=pending[(UPLOAD_STATE, media.media_id)],
            )
        )
    for media_id, item in sorted(by_media.items(), key=lambda pair: str(pair[0])):
        items.append(_extra(tables.upload_state, submission, str(media_id), item))
    return MirrorView(reachable=True, items=tuple(items))


def _compare(
    *, label: str, table: str, key: dict[str, str], expected: dict[str, Any], found: dict[str, Any] | None, pending: int
) -> MirrorItem:
    version = expected["version"]
    if found is None:
        rows = tuple(AttributeRow(name, _shown(value), None, True) for name, value in expected.items())
        return MirrorItem(label, table, key, "missing", version, None, rows, others=(), pending=pending)
    rows = tuple(
        AttributeRow(name, _shown(value), _shown(found.get(name)), name not in found or found[name] != value)
        for name, value in expected.items()
    )
    mirror_version = found.get("version")
    state: ItemState
    if not isinstance(mirror_version, int) or mirror_version < version:
        state = "behind"  # no version at all: only others wrote it, the portal's first write is owed
    elif mirror_version > version:
        state = "ahead"
    else:
        state = "differing" if any(row.differs for row in rows) else "in sync"
    others = _others(found, expected)
    return MirrorItem(label, table, key, state, version, mirror_version, rows, others=others, pending=pending)


def _extra(table: str, submission: Submission, media_id: str, item: dict[str, Any]) -> MirrorItem:
    """An upload-state item under this submission's key for a file the database does not have."""
    rows = tuple(
        AttributeRow(name, None, _shown(value), True) for name, value in item.items() if name not in KEY_ATTRIBUTES
    )
    key = {"trackingId": submission.tracking_id, "mediaId": media_id}
    return MirrorItem(f"File {media_id}", table, key, "extra", None, item.get("version"), rows, others=(), pending=0)


def _others(found: dict[str, Any], owned: dict[str, Any]) -> tuple[OtherAttribute, ...]:
    """The pipeline's processing report first (the attributes a ticket asks about), then any other."""
    names = [name for name in found if name not in owned and name not in KEY_ATTRIBUTES]
    names.sort(key=lambda name: (PIPELINE_ATTRIBUTES.index(name) if name in PIPELINE_ATTRIBUTES else 99, name))
    return tuple(OtherAttribute(name, _shown(found[name])) for name in names)


def _pending_writes(submission: Submission) -> Counter[tuple[str, str | None]]:
    """Mirror writes still owed, by (table, mediaId): one query reading two short JSON values
    per row, so thousands of parts recorded while DynamoDB was down cost little."""
    rows = OutboxMessage.objects.filter(
        submission=submission, topic=OutboxMessage.Topic.MIRROR, status__in=OWED
    ).values_list("body__table", "body__key__mediaId")
    return Counter((table, media_id) for table, media_id in rows)


def _shown(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value
