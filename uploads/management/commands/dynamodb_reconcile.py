import json
import sys
from argparse import ArgumentParser, ArgumentTypeError, RawDescriptionHelpFormatter
from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from django.utils.dateparse import parse_date, parse_datetime

from tenants.models import Tenant
from uploads.dynamodb import DynamoDBUnavailable
from uploads.services.drift import (
    ABSENT,
    PAGE_SIZE,
    Difference,
    MirrorOff,
    ReconcileReport,
    mirror_reconcile,
)

PROGRESS_EVERY = 1000  # rows and items between two progress lines on stderr
DRIFT, FAILED = 1, 2  # exit statuses; 0: nothing left to do

HELP = "Compare submissions and files with their DynamoDB mirror items; with --fix, enqueue writes that repair them."
EPILOG = """\
Only the attributes the portal owns are compared; the pipeline's own (processingStage, catalogId,
...) are never drift.

Counts:
  checked    submissions and files compared with their items
  missing    no item, or an item without a version
  stale      the item's version is older than Django's
  differing  same version, yet an owned attribute differs
  ahead      the item's version is newer than Django's (the portal never wrote it)
  extra      an item whose submission or file Django does not have
  fixed      mirror writes --fix enqueued
  drift      missing + stale + differing + ahead + extra

--fix only enqueues mirror writes of the current state (outbox topic "mirror"), for missing, stale
and differing rows; the relay (the worker, or `manage.py deliver_outbox`) sends them, as
conditional writes that never overwrite a newer version. Ahead and extra items are only reported:
nothing is deleted or rolled back. A row whose write still waits in the outbox counts as missing
or stale: run after the outbox drains, or read it as lag.

Extra items are found by reading the tables: the catalog through its byTenant index with --tenant,
otherwise a Scan (DynamoDB bills the whole table read).

--since takes a date (midnight UTC) or an ISO 8601 time (UTC unless it names an offset) and limits
the check to rows and items updated at or after it. --tenant limits it to one tenant's.

Exit status:
  0  no drift; or, with --fix, a write enqueued for every drifted row and no ahead or extra item
  1  drift that is still there: found without --fix, or ahead or extra items
  2  the check could not run (the mirror is off, DynamoDB did not answer, bad arguments)
"""


class Formatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, with the epilog's lists kept as written."""


def moment(text: str) -> datetime:
    """A date or an ISO 8601 time, as an aware UTC datetime."""
    try:
        parsed = parse_datetime(text)
        if parsed is None and (day := parse_date(text)) is not None:
            parsed = datetime.combine(day, time.min)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ArgumentTypeError(f"not a date or an ISO 8601 time: {text!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, formatter_class=Formatter, epilog=EPILOG, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", metavar="TENANT_ID", help="Only this tenant's submissions, files and items.")
        parser.add_argument(
            "--since", type=moment, metavar="DATE", help="Only rows and items updated at or after this date or time."
        )
        parser.add_argument(
            "--fix", action="store_true", help="Enqueue mirror writes for missing, stale and differing rows."
        )
        parser.add_argument(
            "--sample", type=int, default=20, metavar="N", help="Show at most this many differences (default 20)."
        )
        parser.add_argument(
            "--page-size", type=int, default=PAGE_SIZE, metavar="N", help=f"Rows per page (default {PAGE_SIZE})."
        )

    def handle(
        self,
        *args: Any,
        tenant: str | None,
        since: datetime | None,
        fix: bool,
        sample: int,
        page_size: int,
        **options: Any,
    ) -> None:
        if page_size < 1 or sample < 0:
            raise CommandError("--page-size must be at least 1 and --sample at least 0.", returncode=FAILED)
        if tenant is not None and not Tenant.objects.filter(pk=tenant).exists():
            raise CommandError(f"No tenant {tenant!r}.", returncode=FAILED)
        self._printed = 0
        try:
            report = mirror_reconcile(
                tenant_id=tenant, since=since, fix=fix, on_progress=self._progress, sample=sample, page_size=page_size
            )
        except MirrorOff as exc:
            raise CommandError(str(exc), returncode=FAILED) from None
        except DynamoDBUnavailable as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            done = " Fixes enqueued before it stopped stay enqueued." if fix else ""
            raise CommandError(
                f"DynamoDB did not answer ({reason}); the check stopped.{done}", returncode=FAILED
            ) from None
        self._summary(report)
        left = report.unfixable if fix else report.drift
        if left:
            sys.exit(DRIFT)

    def _progress(self, done: int, total: int | None) -> None:
        if done // PROGRESS_EVERY > self._printed // PROGRESS_EVERY:
            self._printed = done
            of = f" of ~{total}" if total else ""
            self.stderr.write(f"checked {done}{of} rows and items")

    def _summary(self, report: ReconcileReport) -> None:
        for name in ("checked", "missing", "stale", "differing", "ahead", "extra", "fixed", "drift"):
            self.stdout.write(f"{name}: {getattr(report, name)}")
        shown = len(report.differences)
        if shown:
            self.stdout.write(
                f"First {shown} of {report.drift} differences:" if shown < report.drift else "Differences:"
            )
        for difference in report.differences:
            self.stdout.write(f"  {describe(difference)}")


def describe(difference: Difference) -> str:
    """`catalog trk_1: stale: version 3 (mirror 2), stage "queued" (mirror "uploaded")`."""
    line = f"{difference.table} {difference.key}: {difference.kind}"
    values = [f"{a.name} {_value(a.django)} (mirror {_value(a.mirror)})" for a in difference.attributes]
    return f"{line}: {', '.join(values)}" if values else line


def _value(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    return json.dumps(value, default=str, ensure_ascii=False)
