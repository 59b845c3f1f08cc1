"""Read-only views of upload state for staff triage, scoped to the staff member's tenants.
Changes go through services (staff actions arrive with the triage issue), never raw edits."""

from django.contrib import admin

from tenants.admin_scoping import ReadOnlyInline, TenantScopedAdmin
from uploads.models import Event, MediaUpload, OutboxMessage, Submission

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


@admin.register(OutboxMessage)
class OutboxMessageAdmin(TenantScopedAdmin):
    tenant_field = "submission__tenant_id"
    list_display = ["id", "topic", "status", "attempts", "submission", "created_at", "sent_at"]
    list_filter = ["status", "topic"]
    list_select_related = ["submission"]
