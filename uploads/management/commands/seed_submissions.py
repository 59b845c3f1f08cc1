"""Seeds a database with many submissions and their files, to measure the portal at scale.

Rows are written as the portal itself would have left them (stages spread over `--days`, files
whose status follows their submission's stage, object keys built like the portal's), but
without events, outbox messages, recorded parts or bytes at storage: enough for the queries of
the status GET, part signing and the admin's lists, not for completing or replaying anything.

PostgreSQL gets COPY (psycopg's `cursor.copy`), SQLite batched INSERTs, one transaction per
batch, so an interrupted run leaves whole submissions behind. Ids come from the tables' own
sequences (PostgreSQL) or past the largest id under the write lock (SQLite), so seeding beside a
running portal, or twice, is safe; tracking and media ids are random like the portal's."""

import json
import math
import os
import random
import time
from argparse import ArgumentParser
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from tenants.models import Tenant
from uploads.models import MediaKind, MediaStatus, MediaUpload, Stage, Strategy, Submission

MIB = 1024 * 1024
# Stages of submissions older than an upload's lifetime: the sweep has closed every open one.
SETTLED_STAGES = {Stage.COMPLETED: 90, Stage.FAILED: 4, Stage.EXPIRED: 5, Stage.ABORTED: 1}
# Stages of younger ones: a few still in flight, as on a working day.
RECENT_STAGES = {
    Stage.COMPLETED: 82,
    Stage.FAILED: 3,
    Stage.PROCESSING: 3,
    Stage.QUEUED: 2,
    Stage.UPLOADED: 2,
    Stage.UPLOADING: 4,
    Stage.INITIATED: 3,
    Stage.ABORTED: 1,
}
STAGE_MESSAGES = {
    Stage.INITIATED: "",
    Stage.UPLOADING: "Receiving files.",
    Stage.UPLOADED: "Upload complete; waiting to be queued.",
    Stage.QUEUED: "Queued for processing.",
    Stage.PROCESSING: "Processing.",
    Stage.COMPLETED: "Catalogued.",
    Stage.FAILED: "Processing failed.",
    Stage.ABORTED: "Aborted by staff.",
    Stage.EXPIRED: "Expired before both files arrived.",
}
STAGE_VERSIONS = {
    Stage.INITIATED: 1,
    Stage.UPLOADING: 2,
    Stage.UPLOADED: 3,
    Stage.QUEUED: 4,
    Stage.PROCESSING: 5,
    Stage.COMPLETED: 6,
    Stage.FAILED: 6,
    Stage.ABORTED: 3,
    Stage.EXPIRED: 2,
}
FILES_DONE = (Stage.UPLOADED, Stage.QUEUED, Stage.PROCESSING, Stage.COMPLETED, Stage.FAILED)
PHOTO_TYPES = (("image/jpeg", "jpg"), ("image/jpeg", "jpg"), ("image/png", "png"), ("image/heic", "heic"))
AUDIO_TYPES = (("audio/ogg", "ogg"), ("audio/mp4", "m4a"), ("audio/webm", "webm"), ("audio/mpeg", "mp3"))
AUDIO_PART_SIZE = 8 * MIB


@dataclass(frozen=True)
class SeedPlan:
    tenant_id: str
    count: int
    files_per_submission: int
    days: float
    batch_size: int
    now: datetime


class Command(BaseCommand):
    help = (
        "Write COUNT submissions with their files for a tenant, fast (COPY on PostgreSQL), to measure "
        "the portal at scale. For benchmarks and staging databases, never production: the rows have "
        "no events, outbox messages or bytes at storage."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="Submissions to write.")
        parser.add_argument("--tenant", required=True, help="An existing tenant's id; the rows are its.")
        parser.add_argument(
            "--files-per-submission", type=int, default=2, help="Files of each submission: photo, audio, photo, ..."
        )
        parser.add_argument("--days", type=float, default=365, help="Spread creation times over this many days.")
        parser.add_argument("--batch-size", type=int, default=10_000, help="Submissions per transaction.")
        parser.add_argument("--seed", type=int, default=None, help="Seed for the stage and size draws (not the ids).")

    def handle(
        self,
        *args: Any,
        count: int,
        tenant: str,
        files_per_submission: int,
        days: float,
        batch_size: int,
        seed: int | None,
        **options: Any,
    ) -> None:
        if count < 1 or batch_size < 1 or files_per_submission < 0 or days <= 0:
            raise CommandError(
                "--count and --batch-size must be at least 1, --files-per-submission at least 0, --days above 0."
            )
        if not Tenant.objects.filter(pk=tenant).exists():
            raise CommandError(f"No tenant {tenant!r}; create it with create_tenant first.")
        plan = SeedPlan(
            tenant_id=tenant,
            count=count,
            files_per_submission=files_per_submission,
            days=days,
            batch_size=batch_size,
            now=timezone.now(),
        )
        started = time.monotonic()
        rng = random.Random(seed)  # noqa: S311 - stages and sizes, not secrets (ids come from os.urandom)
        files = seed_submissions(plan=plan, rng=rng, report=self._progress(started, count))
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Seeded {count} submissions with {files} files for tenant {tenant} in {seconds:.1f} s "
            f"({count / seconds:,.0f} submissions/s) on {connection.vendor}."
        )

    def _progress(self, started: float, total: int) -> Callable[[int, int], None]:
        def report(done: int, files: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            self.stderr.write(f"seeded {done:,}/{total:,} submissions ({files:,} files), {rate:,.0f}/s")
            self.stderr.flush()

        return report


def seed_submissions(*, plan: SeedPlan, rng: random.Random, report: Callable[[int, int], None]) -> int:
    """Writes the plan's submissions in batches; returns how many files it wrote. ANALYZE at the
    end: a planner with statistics from before the growth plans for the old, small tables."""
    writer = _Writer()
    files = 0
    done = 0
    while done < plan.count:
        size = min(plan.batch_size, plan.count - done)
        with transaction.atomic():
            submission_ids = writer.reserve_ids(Submission, size)
            media_ids = writer.reserve_ids(MediaUpload, size * plan.files_per_submission)
            submissions, media = _batch(plan, rng, submission_ids, media_ids)
            writer.write(Submission, submissions)
            writer.write(MediaUpload, media)
        done += size
        files += len(media)
        report(done, files)
    with connection.cursor() as cursor:
        for model in (Submission, MediaUpload):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return files


def _batch(
    plan: SeedPlan, rng: random.Random, submission_ids: Sequence[int], media_ids: Sequence[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    expiry = timedelta(seconds=settings.UPLOADS_UPLOAD_EXPIRY_SECONDS)
    spread = plan.days * 86_400
    artisans = max(1, plan.count // 20)  # about twenty submissions per artisan
    tracking_ids = _random_ids("trk_", len(submission_ids))
    media_names = iter(_random_ids("med_", len(media_ids)))
    media_pks = iter(media_ids)
    submissions: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for pk, tracking_id in zip(submission_ids, tracking_ids, strict=True):
        created = plan.now - timedelta(seconds=rng.random() * spread)
        stages = RECENT_STAGES if plan.now - created < expiry else SETTLED_STAGES
        stage = rng.choices(list(stages), weights=list(stages.values()))[0]
        updated = min(plan.now, created + timedelta(seconds=rng.uniform(5 + plan.files_per_submission, 1800)))
        if stage == Stage.EXPIRED:
            updated = created + expiry
        artisan_id = f"art_{rng.randrange(artisans):07d}"
        row: dict[str, Any] = {
            "id": pk,
            "tracking_id": tracking_id,
            "tenant_id": plan.tenant_id,
            "artisan_id": artisan_id,
            "stage": stage,
            "stage_message": STAGE_MESSAGES[stage],
            "version": STAGE_VERSIONS[stage],
            "created_at": created,
            "updated_at": updated,
            "last_progress_at": updated,
        }
        files = [
            _file(
                rng,
                pk=next(media_pks),
                media_id=next(media_names),
                submission=row,
                index=i,
                expires_at=created + expiry,
            )
            for i in range(plan.files_per_submission)
        ]
        if stage in FILES_DONE:
            row["language"] = rng.choice(settings.UPLOADS_LANGUAGES)
            row["priority"] = rng.choices(("normal", "high", "low"), weights=(90, 5, 5))[0]
            row["photo_key"] = next((f["object_key"] for f in files if f["kind"] == MediaKind.PHOTO), "")
            row["audio_key"] = next((f["object_key"] for f in files if f["kind"] == MediaKind.AUDIO), "")
        if stage == Stage.COMPLETED:
            row["catalog_id"] = "cat_" + tracking_id[4:]
        if stage == Stage.FAILED:
            row["error_details"] = json.dumps({"code": "unreadable_audio", "message": "The audio could not be read."})
        submissions.append(row)
        media.extend(files)
    return submissions, media


def _file(
    rng: random.Random, *, pk: int, media_id: str, submission: dict[str, Any], index: int, expires_at: datetime
) -> dict[str, Any]:
    """The index-th file of a submission, with the status its submission's stage implies: all
    uploaded once it was completed, the first uploaded and the rest pending while uploading."""
    kind = MediaKind.PHOTO if index % 2 == 0 else MediaKind.AUDIO
    content_type, ext = rng.choice(PHOTO_TYPES if kind == MediaKind.PHOTO else AUDIO_TYPES)
    size = int(rng.uniform(0.2, 8) * MIB) if kind == MediaKind.PHOTO else int(rng.uniform(0.1, 40) * MIB)
    multipart = size > settings.UPLOADS_MULTIPART_THRESHOLD
    part_count = math.ceil(size / AUDIO_PART_SIZE) if multipart else None
    stage = submission["stage"]
    object_key = f"{submission['tenant_id']}/{submission['artisan_id']}/{submission['tracking_id']}/{media_id}.{ext}"
    row: dict[str, Any] = {
        "id": pk,
        "media_id": media_id,
        "submission_id": submission["id"],
        "kind": kind,
        "content_type": content_type,
        "declared_size": size,
        "object_key": object_key,
        "strategy": Strategy.MULTIPART if multipart else Strategy.SINGLE,
        "multipart_upload_id": os.urandom(16).hex() if multipart else "",
        "part_size": AUDIO_PART_SIZE if multipart else None,
        "part_count": part_count,
        "expires_at": expires_at,
        # A client starts its files one after the other; the status GET lists them in that order.
        "created_at": submission["created_at"] + timedelta(milliseconds=100 * index),
        "updated_at": submission["updated_at"],
    }
    if stage in FILES_DONE or (stage == Stage.UPLOADING and index == 0):
        digest = os.urandom(16).hex()
        row.update(
            status=MediaStatus.UPLOADED,
            size=size,
            etag=f'"{digest}-{part_count}"' if part_count else f'"{digest}"',
            parts_recorded=part_count or 0,
            bytes_recorded=size if part_count else 0,
            version=2 + (part_count or 0),
        )
    elif stage in (Stage.ABORTED, Stage.EXPIRED):
        status = MediaStatus.ABORTED if stage == Stage.ABORTED else MediaStatus.EXPIRED
        row.update(status=status, released_at=submission["updated_at"], version=2)
    elif stage == Stage.UPLOADING and part_count:
        recorded = rng.randrange(part_count)
        row.update(parts_recorded=recorded, bytes_recorded=recorded * AUDIO_PART_SIZE, version=1 + recorded)
    return row


def _random_ids(prefix: str, count: int) -> list[str]:
    """The portal's id shape (prefix + 24 hex digits), from os.urandom like secrets.token_hex."""
    raw = os.urandom(12 * count).hex()
    return [prefix + raw[i : i + 24] for i in range(0, len(raw), 24)]


class _Writer:
    """Writes rows given as {attname: value}; fields left out take their model default."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        if count == 0:
            return []
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.postgres:
                # Taken from the table's own sequence: a portal inserting meanwhile gets other ids.
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
                )
                return [row[0] for row in cursor.fetchall()]
            # SQLite: inside the batch's IMMEDIATE transaction, so no other writer runs meanwhile.
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608 - a model's table
            first = int(cursor.fetchone()[0]) + 1
        return list(range(first, first + count))

    def write(self, model: type[models.Model], rows: Iterable[dict[str, Any]]) -> None:
        fields = [f for f in model._meta.concrete_fields]
        defaults = {f.attname: f.get_default() for f in fields if f.attname != "id"}
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        prepare = [self._preparer(f) for f in fields]
        names = [f.attname for f in fields]

        def values(row: dict[str, Any]) -> tuple[Any, ...]:
            unknown = row.keys() - defaults.keys() - {"id"}
            assert not unknown, f"no such fields on {model.__name__}: {unknown}"
            return tuple(prep(row.get(name, defaults.get(name))) for name, prep in zip(names, prepare, strict=True))

        with connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(values(row))
            else:
                placeholders = ", ".join(["%s"] * len(fields))
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 - the model's own names
                    [values(r) for r in rows],
                )

    def _preparer(self, field: "models.Field[Any, Any]") -> Callable[[Any], Any]:
        if isinstance(field, models.JSONField):
            # Rows carry JSON already encoded (or None); a default ({}) is encoded here.
            return lambda value: value if value is None or isinstance(value, str) else json.dumps(value)
        if isinstance(field, models.DateTimeField) and not self.postgres:
            adapt = connection.ops.adapt_datetimefield_value
            return lambda value: None if value is None else adapt(value)
        return _unchanged


def _unchanged(value: Any) -> Any:
    return value
