"""Drift between Django and the DynamoDB mirror, found and (on request) repaired.

The outbox makes the mirror converge by itself; drift means something outside that flow: an item
deleted or edited by hand, a table restored from an old backup, an outbox row that ran out of
attempts, a release that changed how an item is built. Both sides are read page by page (Django
by primary key, DynamoDB by key batches and scan pages), so a run's memory does not grow with the
tables. A repair is an ordinary mirror write of the current state through the outbox, so it is
conditional like every other: it can never move an item backwards past a newer write."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

from django.db import transaction
from django.db.models import Model, QuerySet

from uploads.dynamodb import Item, Tables, batch_get, mirror_tables, scan_pages
from uploads.models import MediaUpload, Submission
from uploads.services.mirror import (
    CATALOG,
    CATALOG_ATTRIBUTES,
    UPLOAD_STATE,
    UPLOAD_STATE_ATTRIBUTES,
    catalog_item,
    catalog_key,
    iso,
    mirror_media,
    mirror_submission,
    upload_state_item,
    upload_state_key,
)

PAGE_SIZE = 100  # Django rows per page; one BatchGetItem call each
MISSING, STALE, DIFFERING, AHEAD, EXTRA = "missing", "stale", "differing", "ahead", "extra"


class _Absent:
    """An owned attribute the item does not have (unlike one DynamoDB holds as NULL)."""

    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()

Row = TypeVar("Row", bound=Model)
Progress = Callable[[int, int | None], None]


class MirrorOff(Exception):
    """There is no mirror to compare with."""


@dataclass(frozen=True)
class AttributeDifference:
    name: str
    django: Any
    mirror: Any


@dataclass(frozen=True)
class Difference:
    """One row whose item is not what Django holds. `key`: the trackingId, and for an upload-state
    item the trackingId and mediaId joined by '/'. `attributes`: the owned attributes that differ
    (none for missing and extra items)."""

    table: str
    key: str
    kind: str
    attributes: tuple[AttributeDifference, ...] = ()


@dataclass(frozen=True)
class ReconcileReport:
    """`checked`: Django rows compared (submissions and files). `missing`: no item, or an item
    without a version. `stale`: the item's version is older than Django's. `differing`: same
    version, yet an owned attribute differs. `ahead`: the item's version is newer than Django's
    (never written by the portal). `extra`: an item whose submission or file Django does not have.
    `fixed`: mirror writes enqueued for missing, stale and differing rows."""

    checked: int
    missing: int
    stale: int
    differing: int
    ahead: int
    extra: int
    fixed: int
    differences: tuple[Difference, ...]

    @property
    def drift(self) -> int:
        return self.missing + self.stale + self.differing + self.ahead + self.extra

    @property
    def unfixable(self) -> int:
        """Drift that --fix never touches: only a person can say what an ahead or extra item is."""
        return self.ahead + self.extra


@dataclass
class _Tally:
    sample: int
    on_progress: Progress | None
    total: int | None = None
    done: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((MISSING, STALE, DIFFERING, AHEAD, EXTRA), 0))
    differences: list[Difference] = field(default_factory=list)

    def found(self, difference: Difference) -> None:
        self.counts[difference.kind] += 1
        if len(self.differences) < self.sample:
            self.differences.append(difference)

    def progress(self, rows: int) -> None:
        self.done += rows
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)


@dataclass(frozen=True)
class _Side(Generic[Row]):
    """One table as seen from Django: its rows' keys, items and repair."""

    name: str
    table: str
    owned: tuple[str, ...]
    key: Callable[[Row], dict[str, str]]
    expected: Callable[[Row], dict[str, Any]]
    repair: Callable[[Row, str], None]


def mirror_reconcile(
    *,
    tenant_id: str | None = None,
    since: datetime | None = None,
    fix: bool = False,
    on_progress: Progress | None = None,
    sample: int = 20,
    page_size: int = PAGE_SIZE,
) -> ReconcileReport:
    """Compares every submission and file (of `tenant_id`, updated at or after `since`) with its
    item, then reads the tables for items Django does not have, in the same scope. Only the
    attributes the portal owns are compared; the pipeline's are its own business. With `fix`,
    enqueues a mirror write of the current state for each missing, stale or differing row, in one
    transaction per page; ahead and extra items are only reported.

    `on_progress(done, total)`: after each page, rows and items read so far, and about how many
    there are (twice the rows in scope: each row should have one item).
    Raises MirrorOff when the mirror is off, DynamoDBUnavailable when DynamoDB does not answer."""
    tables = mirror_tables()
    if tables is None:
        raise MirrorOff("The mirror is off: set DYNAMODB_CATALOG_TABLE.")
    submissions = Submission.objects.all()
    media = MediaUpload.objects.select_related("submission")
    if tenant_id is not None:
        submissions = submissions.filter(tenant_id=tenant_id)
        media = media.filter(submission__tenant_id=tenant_id)
    if since is not None:
        submissions = submissions.filter(updated_at__gte=since)
        media = media.filter(updated_at__gte=since)
    tally = _Tally(sample=sample, on_progress=on_progress)
    if on_progress is not None:
        tally.total = 2 * (submissions.count() + media.count())
    # One suffix per run keeps each repair's dedup key apart from the change's own and from
    # earlier runs' repairs of the same version.
    repair_suffix = f":fix:{uuid4().hex}" if fix else None
    catalog = _Side[Submission](
        name=CATALOG,
        table=tables.catalog,
        owned=CATALOG_ATTRIBUTES,
        key=catalog_key,
        expected=catalog_item,
        repair=lambda submission, suffix: mirror_submission(submission, dedup_suffix=suffix, repair=True),
    )
    upload_state = _Side[MediaUpload](
        name=UPLOAD_STATE,
        table=tables.upload_state,
        owned=UPLOAD_STATE_ATTRIBUTES,
        key=upload_state_key,
        expected=upload_state_item,
        repair=lambda media, suffix: mirror_media(media.pk, dedup_suffix=suffix, repair=True),
    )
    checked, fixed = _check(catalog, submissions, tally, page_size, repair_suffix)
    media_checked, media_fixed = _check(upload_state, media, tally, page_size, repair_suffix)
    _find_extra(tally, tables, tenant_id, since)
    return ReconcileReport(
        checked=checked + media_checked,
        fixed=fixed + media_fixed,
        differences=tuple(tally.differences),
        **tally.counts,
    )


def _check(side: _Side[Row], rows: QuerySet[Row], tally: _Tally, page_size: int, suffix: str | None) -> tuple[int, int]:
    """Compares `rows` with their items a page at a time; returns (rows checked, repairs enqueued)."""
    checked = fixed = 0
    for page in _pages(rows, page_size):
        keys = [side.key(row) for row in page]
        names = tuple(keys[0])
        found = batch_get(table=side.table, keys=keys, attributes=(*side.owned, *names))
        items = {_label(item, names): item for item in found}
        owed = []
        for row, key in zip(page, keys, strict=True):
            label = _label(key, names)
            if _compare(tally, side.name, label, side.expected(row), items.get(label), side.owned):
                owed.append(row)
        if suffix is not None and owed:
            with transaction.atomic():
                for row in owed:
                    side.repair(row, suffix)
            fixed += len(owed)
        checked += len(page)
        tally.progress(len(page))
    return checked, fixed


def _label(key: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """The key as a difference shows it: trackingId, or trackingId/mediaId."""
    return "/".join(str(key[name]) for name in names)


def _compare(
    tally: _Tally, table: str, key: str, django: dict[str, Any], item: Item | None, owned: tuple[str, ...]
) -> bool:
    """Records the row's difference, if any; True when a repair write is owed."""
    if item is None or "version" not in item:
        tally.found(Difference(table=table, key=key, kind=MISSING))
        return True
    attributes = tuple(
        AttributeDifference(name=name, django=django[name], mirror=item.get(name, ABSENT))
        for name in owned
        if item.get(name, ABSENT) != django[name]
    )
    if not attributes:
        return False
    version = item["version"]
    if isinstance(version, int) and version > django["version"]:
        tally.found(Difference(table=table, key=key, kind=AHEAD, attributes=attributes))
        return False
    kind = DIFFERING if version == django["version"] else STALE
    tally.found(Difference(table=table, key=key, kind=kind, attributes=attributes))
    return True


def _find_extra(tally: _Tally, tables: Tables, tenant_id: str | None, since: datetime | None) -> None:
    """Items in scope (their tenantId, their updatedAt) whose submission or file Django does not
    have, one Django query per scan page. Existence is judged by key and tenant, not by `since`:
    an item newer than its row is a difference the row's side reports, not an extra."""
    after = iso(since) if since is not None else None
    submissions = Submission.objects.all()
    media = MediaUpload.objects.all()
    if tenant_id is not None:
        submissions = submissions.filter(tenant_id=tenant_id)
        media = media.filter(submission__tenant_id=tenant_id)
    for page in scan_pages(table=tables.catalog, tenant_id=tenant_id, since=after, by_tenant=True):
        known = set(
            submissions.filter(tracking_id__in=[i["trackingId"] for i in page]).values_list("tracking_id", flat=True)
        )
        for item in page:
            if item["trackingId"] not in known:
                tally.found(Difference(table=CATALOG, key=item["trackingId"], kind=EXTRA))
        tally.progress(len(page))
    for page in scan_pages(table=tables.upload_state, tenant_id=tenant_id, since=after):
        pairs = set(
            media.filter(media_id__in=[i["mediaId"] for i in page]).values_list("submission__tracking_id", "media_id")
        )
        for item in page:
            if (item["trackingId"], item["mediaId"]) not in pairs:
                tally.found(Difference(table=UPLOAD_STATE, key=f"{item['trackingId']}/{item['mediaId']}", kind=EXTRA))
        tally.progress(len(page))


def _pages(rows: QuerySet[Row], size: int) -> Iterator[list[Row]]:
    """Keyset pagination by primary key: each page is one indexed query, however deep the run."""
    last: Any = None
    while True:
        page_rows = rows.order_by("pk")
        if last is not None:
            page_rows = page_rows.filter(pk__gt=last)
        page = list(page_rows[:size])
        if not page:
            return
        yield page
        if len(page) < size:
            return
        last = page[-1].pk
