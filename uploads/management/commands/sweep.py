from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from uploads.services import sweep_expired


class Command(BaseCommand):
    help = (
        "Expire abandoned uploads and give their storage back: the job Celery beat runs every "
        "UPLOADS_SWEEP_INTERVAL_SECONDS. Completed uploads are never touched."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only list what a run would expire and release.")
        parser.add_argument("--limit", type=int, default=500, help="At most this many of each kind per run.")

    def handle(self, *args: Any, dry_run: bool, limit: int, **options: Any) -> None:
        report = sweep_expired(dry_run=dry_run, limit=limit)
        expire, release = ("Would expire", "Would release") if dry_run else ("Expired", "Released")
        self._line(f"{expire} {len(report.expired_submissions)} submissions", report.expired_submissions)
        self._line(f"{expire} {len(report.expired_media)} uploads", report.expired_media)
        self._line(f"{release} storage of {len(report.released_media)} uploads", report.released_media)
        if report.release_failed:
            self.stdout.write(f"Storage unavailable for {len(report.release_failed)}; the next run retries.")

    def _line(self, summary: str, ids: list[str]) -> None:
        self.stdout.write(f"{summary}: {' '.join(ids)}" if ids else f"{summary}.")
