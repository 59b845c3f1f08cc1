"""The figures of the admin index, scoped to a staff member's tenants. Every figure is one
bounded query (aggregated or sliced in the database), so the page costs the same whatever the
tables hold, and the whole is cached briefly: an index reload by every staff member must not
scan a million rows each time."""

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.safestring import SafeString

from uploads.dashboard_chart import HourBucket, hourly_chart_svg
from uploads.models import Event, MediaStatus, MediaUpload, OutboxMessage, Stage, Submission
from uploads.selectors import submissions_stuck

HOURS = 24
LIST_LENGTH = 10
MEDIAN_SAMPLE = 1_000  # the newest queued events the median looks at
COMPLETED = "submission.completed"
QUEUED = "submission.queued"
CACHE_PREFIX = "admin-dashboard:v1:"  # bump when Dashboard's shape changes: old pickles are dropped


@dataclass(frozen=True)
class TenantCounts:
    tenant_id: str
    counts: tuple[int, ...]  # in the order of Dashboard.stages
    total: int


@dataclass(frozen=True)
class StuckRow:
    pk: int
    tracking_id: str
    tenant_id: str
    stage: str
    last_progress_at: datetime


@dataclass(frozen=True)
class FailedMessage:
    pk: int
    topic: str
    submission_pk: int | None
    tracking_id: str
    attempts: int
    last_error: str
    created_at: datetime


@dataclass(frozen=True)
class Dashboard:
    """Plain values only (no model instances): it is pickled into the cache."""

    generated_at: datetime
    stages: tuple[str, ...]
    tenants: tuple[TenantCounts, ...]
    stage_totals: tuple[int, ...]
    total: int
    hours: tuple[HourBucket, ...]
    stuck_count: int
    stuck: tuple[StuckRow, ...]
    failed_count: int
    failed: tuple[FailedMessage, ...]
    median_complete_to_queued: timedelta | None

    @property
    def completions_24h(self) -> int:
        return sum(h.completions for h in self.hours)

    @property
    def bytes_24h(self) -> int:
        return sum(h.bytes for h in self.hours)

    @property
    def median_display(self) -> str:
        return duration_display(self.median_complete_to_queued)

    @property
    def chart_svg(self) -> SafeString:
        return hourly_chart_svg(self.hours)


def dashboard_for(*, tenant_ids: Collection[str] | None, now: datetime | None = None) -> Dashboard:
    """The dashboard of these tenants (None: every tenant, for superusers), from the cache when
    it is younger than ADMIN_DASHBOARD_CACHE_SECONDS. `now` pins the clock (tests); a pinned
    clock is part of the cache key, so it never reads figures computed for another moment."""
    key = dashboard_cache_key(tenant_ids=tenant_ids, now=now)
    cached = cache.get(key)
    if isinstance(cached, Dashboard):
        return cached
    dashboard = _compute(tenant_ids=tenant_ids, now=now or timezone.now())
    cache.set(key, dashboard, settings.ADMIN_DASHBOARD_CACHE_SECONDS)
    return dashboard


def dashboard_cache_key(*, tenant_ids: Collection[str] | None, now: datetime | None = None) -> str:
    """Hashed, so a staff member of many tenants still gets a key every cache backend accepts."""
    scope = "all" if tenant_ids is None else "\n".join(sorted(set(tenant_ids)))
    if now is not None:
        scope += "@" + now.isoformat()
    return CACHE_PREFIX + hashlib.sha256(scope.encode()).hexdigest()


def _scoped(queryset: QuerySet[Any], tenant_ids: Collection[str] | None, path: str) -> QuerySet[Any]:
    return queryset if tenant_ids is None else queryset.filter(**{f"{path}__in": list(tenant_ids)})


def _compute(*, tenant_ids: Collection[str] | None, now: datetime) -> Dashboard:
    stages = tuple(Stage.values)
    tenants, stage_totals = _stage_counts(tenant_ids, stages)
    stuck_rows = submissions_stuck(_scoped(Submission.objects.all(), tenant_ids, "tenant_id"), now=now)
    failed_rows = _scoped(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED), tenant_ids, "submission__tenant_id"
    )
    return Dashboard(
        generated_at=now,
        stages=stages,
        tenants=tenants,
        stage_totals=stage_totals,
        total=sum(stage_totals),
        hours=_hourly(tenant_ids, now),
        stuck_count=stuck_rows.count(),
        stuck=tuple(
            StuckRow(pk=pk, tracking_id=tracking_id, tenant_id=tenant_id, stage=stage, last_progress_at=last)
            for pk, tracking_id, tenant_id, stage, last in stuck_rows.order_by("last_progress_at", "pk").values_list(
                "pk", "tracking_id", "tenant_id", "stage", "last_progress_at"
            )[:LIST_LENGTH]
        ),
        failed_count=failed_rows.count(),
        failed=tuple(
            FailedMessage(
                pk=row.pk,
                topic=row.topic,
                submission_pk=row.submission_id,
                tracking_id=row.submission.tracking_id if row.submission else "",
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
            )
            for row in failed_rows.select_related("submission").order_by("-created_at", "-pk")[:LIST_LENGTH]
        ),
        median_complete_to_queued=_median_complete_to_queued(tenant_ids, now),
    )


def _stage_counts(
    tenant_ids: Collection[str] | None, stages: tuple[str, ...]
) -> tuple[tuple[TenantCounts, ...], tuple[int, ...]]:
    """One GROUP BY (tenant, stage). A staff member's tenants appear even with no submission yet."""
    grouped = (
        _scoped(Submission.objects.all(), tenant_ids, "tenant_id")
        .order_by()
        .values_list("tenant_id", "stage")
        .annotate(n=Count("pk"))
    )
    table: dict[str, dict[str, int]] = {tenant: {} for tenant in tenant_ids or ()}
    for tenant, stage, n in grouped:
        table.setdefault(tenant, {})[stage] = n
    rows = tuple(
        TenantCounts(
            tenant_id=tenant,
            counts=tuple(table[tenant].get(stage, 0) for stage in stages),
            total=sum(table[tenant].values()),
        )
        for tenant in sorted(table)
    )
    totals = tuple(sum(row.counts[i] for row in rows) for i in range(len(stages)))
    return rows, totals


def hour_starts(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The starts of the last `hours` hours, oldest first, the current (partial) hour last."""
    current = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=hours - 1 - i) for i in range(hours)]


def _hourly(tenant_ids: Collection[str] | None, now: datetime) -> tuple[HourBucket, ...]:
    """Completions (events) and finished bytes (files by the time they finished) per hour,
    bucketed by the database; hours without any are zero."""
    starts = hour_starts(now)
    completions = dict(
        _scoped(Event.objects.filter(action=COMPLETED), tenant_ids, "submission__tenant_id")
        .filter(created_at__gte=starts[0], created_at__lte=now)
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    finished = dict(
        _scoped(MediaUpload.objects.filter(status=MediaStatus.UPLOADED), tenant_ids, "submission__tenant_id")
        .filter(updated_at__gte=starts[0], updated_at__lte=now)
        .annotate(hour=TruncHour("updated_at"))
        .order_by()
        .values_list("hour")
        .annotate(total=Sum("size"))
        .values_list("hour", "total")
    )
    return tuple(
        HourBucket(start=start, completions=completions.get(start, 0), bytes=finished.get(start) or 0)
        for start in starts
    )


def _median_complete_to_queued(tenant_ids: Collection[str] | None, now: datetime) -> timedelta | None:
    """Over the newest MEDIAN_SAMPLE queued events of the last 24 hours: two bounded queries,
    the second reading the whole (short) timeline of those submissions, so a queued event is
    paired with its own completion, not an older one whose queued event fell out of the window."""
    sample = list(
        _scoped(Event.objects.filter(action=QUEUED), tenant_ids, "submission__tenant_id")
        .filter(created_at__gte=now - timedelta(hours=HOURS), created_at__lte=now)
        .order_by("-created_at", "-pk")
        .values_list("submission_id", "created_at")[:MEDIAN_SAMPLE]
    )
    if not sample:
        return None
    timeline = Event.objects.filter(
        action__in=(COMPLETED, QUEUED), submission_id__in={sid for sid, _ in sample}, created_at__lte=now
    ).values_list("submission_id", "action", "created_at")
    completed: list[tuple[int, datetime]] = []
    queued: list[tuple[int, datetime]] = []
    for submission_id, action, at in timeline:
        (completed if action == COMPLETED else queued).append((submission_id, at))
    since = min(at for _, at in sample)
    return median_duration(complete_to_queued_delays(completed=completed, queued=queued, since=since))


def complete_to_queued_delays(
    *,
    completed: Iterable[tuple[int, datetime]],
    queued: Iterable[tuple[int, datetime]],
    since: datetime | None = None,
) -> list[timedelta]:
    """Pairs each completion with the first queued event of the same submission after it, and
    keeps the pairs queued at or after `since`. A queued event with no completion before it
    since the last pair (a staff retry long after the upload) is no measure of the queue."""
    timeline: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for submission_id, at in completed:
        timeline[submission_id].append((at, 0))  # 0 sorts a completion before a queued event of the same instant
    for submission_id, at in queued:
        timeline[submission_id].append((at, 1))
    delays = []
    for events in timeline.values():
        pending: datetime | None = None
        for at, kind in sorted(events):
            if kind == 0:
                pending = at
            elif pending is not None:
                if since is None or at >= since:
                    delays.append(at - pending)
                pending = None
    return delays


def median_duration(delays: Sequence[timedelta]) -> timedelta | None:
    if not delays:
        return None
    return timedelta(seconds=statistics.median(d.total_seconds() for d in delays))


def duration_display(delay: timedelta | None) -> str:
    """Short and exact enough to compare at a glance: 850 ms, 12 s, 3 min 5 s, 2 h 4 min."""
    if delay is None:
        return "—"
    seconds = delay.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
