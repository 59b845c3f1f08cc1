"""The expiry sweep: abandoned uploads give their storage back. Only what is unfinished is
touched: a pending upload past its expiry, a submission that never completed within its TTL,
and the storage of closed uploads whose release an outage interrupted or a late PUT undid. A finished upload is
never selected, and media_release refuses one."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from uploads.errors import StorageUnavailable
from uploads.models import MediaStatus, MediaUpload, Stage, Strategy, Submission
from uploads.services.closing import media_close, media_release
from uploads.services.media import OPEN_STAGES
from uploads.services.stages import submission_advance

logger = logging.getLogger(__name__)
ACTOR = "system:sweep"


@dataclass
class SweepReport:
    """Ids, so a dry run can show what a real run would do."""

    expired_submissions: list[str] = field(default_factory=list)
    expired_media: list[str] = field(default_factory=list)
    released_media: list[str] = field(default_factory=list)
    release_failed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in vars(self).items()}


def sweep_expired(*, dry_run: bool, limit: int = 500, now: datetime | None = None) -> SweepReport:
    """Each run handles at most `limit` of each kind; the next run takes the rest."""
    now = now or timezone.now()
    ttl = timedelta(seconds=settings.UPLOADS_SUBMISSION_TTL_SECONDS)
    report = SweepReport()
    submissions = list(Submission.objects.filter(stage__in=OPEN_STAGES, created_at__lte=now - ttl)[:limit])
    expiring = list(
        MediaUpload.objects.filter(status=MediaStatus.PENDING)
        .filter(
            Q(expires_at__lte=now)
            | Q(submission__in=[s.pk for s in submissions])
            # left open by an earlier run that hit its limit or died between the two steps
            | Q(submission__stage__in=[Stage.EXPIRED, Stage.ABORTED])
        )
        .order_by("expires_at")[:limit]
    )
    if dry_run:
        report.expired_submissions = [s.tracking_id for s in submissions]
        report.expired_media = [m.media_id for m in expiring]
        report.released_media = [m.media_id for m in expiring] + [m.media_id for m in _unreleased(limit, now)]
        return report

    for submission in submissions:
        expired = submission_advance(
            submission_id=submission.pk,
            from_stages=OPEN_STAGES,
            to=Stage.EXPIRED,
            message="The upload was not completed in time.",
            actor=ACTOR,
            action="submission.expired",
        )
        if expired is not None:
            report.expired_submissions.append(expired.tracking_id)
    for media in expiring:
        if media_close(media=media, status=MediaStatus.EXPIRED, actor=ACTOR):
            report.expired_media.append(media.media_id)
    # Everything closed and not yet released: what this run just expired, what an abort could
    # not release during an outage, and what earlier runs failed to release.
    for media in _unreleased(limit, now):
        try:
            media_release(media=media)
        except StorageUnavailable as exc:
            logger.warning("upload %s: storage not released (%s); the next sweep retries", media.media_id, exc)
            report.release_failed.append(media.media_id)
        else:
            report.released_media.append(media.media_id)
    return report


def _unreleased(limit: int, now: datetime) -> list[MediaUpload]:
    """Closed uploads whose storage is still to be freed: never released (an outage, or just
    expired), or single PUTs released while their URL was still valid. A client holding such a
    URL can PUT after the release and recreate the object (S3 checks the signature, not the
    portal's records), so once the last URL has expired the object is deleted again."""
    closed = (MediaStatus.ABORTED, MediaStatus.EXPIRED)
    url_lifetime = timedelta(seconds=settings.UPLOADS_URL_EXPIRY_SECONDS)
    released_too_early = Q(
        strategy=Strategy.SINGLE, released_at__lt=F("updated_at") + url_lifetime, updated_at__lte=now - url_lifetime
    )
    due = MediaUpload.objects.filter(status__in=closed).filter(Q(released_at__isnull=True) | released_too_early)
    return list(due.order_by("updated_at")[:limit])
