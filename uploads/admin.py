"""Views of upload state for staff triage, scoped to the staff member's tenants. Rows are
read-only; the few changes staff make are actions that call a service, for operators only."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.admin_scoping import ReadOnlyInline, TenantScopedAdmin
from uploads.errors import DomainError
from uploads.models import Event, MediaUpload, OutboxMessage, Submission
from uploads.services import outbox_retry_failed, submission_reprocess

MEDIA_FIELDS = ("media_id", "kind", "strategy", "status", "declared_size", "size", "object_key", "expires_at")
EVENT_FIELDS = ("created_at", "actor", "action", "details")


class MediaInline(ReadOnlyInline):
    model = MediaUpload
    fields = readonly_fields = MEDIA_FIELDS


class EventInline(ReadOnlyInline):
    model = Event
    fields = readonly_fields = EVENT_FIELDS


@admin.register(Submission)
class SubmissionAdmin(TenantScopedAdmin):
    list_display = ["tracking_id", "tenant", "artisan_id", "stage", "language", "updated_at"]
    list_filter = ["stage", ("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["tracking_id", "artisan_id", "catalog_id"]
    list_select_related = ["tenant"]
    inlines = [MediaInline, EventInline]
    actions = ["send_back_for_processing"]

    @admin.action(description="Send failed submissions back for processing", permissions=["operate"])
    def send_back_for_processing(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        done = 0
        for submission in self.operable(request, queryset):
            try:
                submission_reprocess(submission=submission, actor=f"staff:{request.user.get_username()}")
            except DomainError as exc:  # not failed (or no longer): say so, go on with the rest
                self.message_user(request, f"{submission.tracking_id}: {exc}", messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} submission(s) sent back for processing.", messages.SUCCESS)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(TenantScopedAdmin):
    tenant_field = "submission__tenant_id"
    list_display = ["id", "topic", "status", "attempts", "submission", "last_error", "next_attempt_at", "sent_at"]
    list_filter = ["status", "topic"]
    list_select_related = ["submission"]
    actions = ["retry_delivery"]

    @admin.action(description="Retry delivery of failed messages", permissions=["operate"])
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ids = list(self.operable(request, queryset).values_list("pk", flat=True))
        retried = outbox_retry_failed(message_ids=ids)
        self.message_user(request, f"{retried} message(s) will be sent again shortly.", messages.SUCCESS)
