"""Upload state. Django is its source of truth; rules that change it live in uploads.services."""

import secrets
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

if TYPE_CHECKING:
    from django.db.models.sql.compiler import _AsSqlType  # the stubs' name for (sql, params)
from django.utils import timezone

from tenants.models import Tenant
from uploads.json_bounds import StoredJSONField


def new_tracking_id() -> str:
    return "trk_" + secrets.token_hex(12)


def new_media_id() -> str:
    return "med_" + secrets.token_hex(12)


class Stage(models.TextChoices):
    INITIATED = "initiated"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    EXPIRED = "expired"


class Submission(models.Model):
    """One tracking id: the photo and audio of one product, and where processing stands."""

    tracking_id = models.CharField(max_length=32, unique=True, default=new_tracking_id)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="submissions")
    artisan_id = models.CharField(max_length=64)
    language = models.CharField(max_length=8, blank=True)
    priority = models.CharField(max_length=16, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.INITIATED)
    stage_message = models.CharField(max_length=500, blank=True)
    catalog_id = models.CharField(max_length=128, blank=True)
    error_details = StoredJSONField(null=True, blank=True)  # a JSONField, bounded when read back
    photo_key = models.CharField(max_length=512, blank=True)
    audio_key = models.CharField(max_length=512, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_progress_at = models.DateTimeField(
        default=timezone.now, help_text="The last sign of life: a stage change, a recorded part, a finished file."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "stage", "updated_at"]),
            # staff's "stuck" filter and the dashboard's oldest stuck submissions
            models.Index(fields=["stage", "last_progress_at"]),
            models.Index(fields=["artisan_id"]),  # staff paste an artisan id from a ticket
        ]

    def __str__(self) -> str:
        return self.tracking_id


class MediaKind(models.TextChoices):
    PHOTO = "photo"
    AUDIO = "audio"


class Strategy(models.TextChoices):
    SINGLE = "single"
    MULTIPART = "multipart"


class MediaStatus(models.TextChoices):
    PENDING = "pending"
    UPLOADED = "uploaded"
    ABORTED = "aborted"
    EXPIRED = "expired"


class KeyTenant(models.Func):
    """The tenant of an object key: its first segment. Written with literals only, no query
    parameter: SQLite uses an index on an expression only for the same expression, parameters
    included. PostgreSQL keeps no statistics on the expression of a partial index and expects
    few rows per tenant, so it reads by the index whatever share of the files a tenant has."""

    arity = 1
    output_field = models.CharField()
    template = "SPLIT_PART(%(expressions)s, '/', 1)"

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> "_AsSqlType":
        return self.as_sql(
            compiler, connection, template="SUBSTR(%(expressions)s, 1, INSTR(%(expressions)s, '/') - 1)", **extra
        )


class MediaUpload(models.Model):
    """One file of a submission, and the plan its bytes follow into storage."""

    media_id = models.CharField(max_length=32, unique=True, default=new_media_id)
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=8, choices=MediaKind.choices)
    content_type = models.CharField(max_length=64)
    declared_size = models.BigIntegerField(null=True, blank=True, help_text="Null when the client did not declare it.")
    object_key = models.CharField(max_length=512, unique=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices)
    multipart_upload_id = models.CharField(max_length=1024, blank=True)
    part_size = models.BigIntegerField(null=True, blank=True)
    part_count = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=MediaStatus.choices, default=MediaStatus.PENDING)
    expires_at = models.DateTimeField()
    etag = models.CharField(max_length=128, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    # Kept with each recorded part, so progress is never a count over thousands of parts.
    parts_recorded = models.PositiveIntegerField(default=0, help_text="Parts its client has recorded.")
    bytes_recorded = models.BigIntegerField(default=0, help_text="The bytes of the parts its client has recorded.")
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped by one for each change, recorded parts included."
    )
    released_at = models.DateTimeField(
        null=True, blank=True, help_text="When storage freed what an aborted or expired upload held."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["status", "updated_at"]),  # the dashboard's bytes per hour
            # A tenant's open uploads, counted when it starts a file (uploads/services/caps.py).
            models.Index(
                KeyTenant("object_key"),
                "expires_at",
                name="uploads_media_open_by_tenant",
                condition=models.Q(status=MediaStatus.PENDING),
            ),
        ]

    def __str__(self) -> str:
        return self.media_id


class UploadPart(models.Model):
    """A part as the client reported it (bookkeeping; storage's ListParts is the authority)."""

    media = models.ForeignKey(MediaUpload, on_delete=models.CASCADE, related_name="parts")
    part_number = models.PositiveIntegerField()
    size = models.BigIntegerField()
    etag = models.CharField(max_length=128)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["part_number"]
        constraints = [models.UniqueConstraint(fields=["media", "part_number"], name="uploadpart_unique_media_part")]

    def __str__(self) -> str:
        return f"part {self.part_number} of {self.media_id}"


class OutboxMessage(models.Model):
    """A message the portal owes a queue, written in the transaction of the change that causes
    it, so a crash or an outage can delay it but never lose it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    class Topic(models.TextChoices):
        PROCESSING = "processing"
        STATUS = "status"
        MIRROR = "mirror"  # a versioned write to the DynamoDB mirror

    dedup_key = models.CharField(max_length=200, unique=True)
    topic = models.CharField(max_length=16, choices=Topic.choices)
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="outbox", null=True)
    body = models.JSONField()
    attributes = models.JSONField(default=dict)
    group_id = models.CharField(max_length=128, blank=True)
    deduplication_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(default=timezone.now, help_text="Not sent again before this (backoff).")
    claim_token = models.CharField(max_length=32, blank=True, help_text="Which sender holds the row while sending.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    trace_context = models.JSONField(
        default=dict,
        blank=True,
        help_text="The trace of the change that wrote it (W3C traceparent), when tracing is on.",
    )

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's claim, one topic at a time: due rows of that topic only, oldest due first,
            # so a backlog of another topic's rows (the mirror's, while DynamoDB is down) costs it nothing.
            models.Index(fields=["status", "topic", "next_attempt_at"]),
            models.Index(fields=["claim_token"]),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.dedup_key} ({self.status})"


class Event(models.Model):
    """Append-only timeline of a submission, for triage."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    media = models.ForeignKey(MediaUpload, on_delete=models.CASCADE, related_name="events", null=True, blank=True)
    actor = models.CharField(max_length=100)
    action = models.CharField(max_length=50)
    reason = models.CharField(max_length=500, blank=True, help_text="Why staff did it, in their words.")
    details = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(
        max_length=128, blank=True, help_text="The reporter's own id for the event (the pipeline's eventId)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["action", "created_at"])]  # the dashboard's figures per hour
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "external_id"],
                condition=~models.Q(external_id=""),
                name="event_unique_submission_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"
