"""Read-mostly views of upload state for staff triage."""

from django.contrib import admin

from uploads.models import Event, MediaUpload, OutboxMessage, Submission

MEDIA_FIELDS = ("media_id", "kind", "strategy", "status", "declared_size", "size", "object_key", "expires_at")
EVENT_FIELDS = ("created_at", "actor", "action", "details")


class MediaInline(admin.TabularInline):
    model = MediaUpload
    extra = 0
    can_delete = False
    fields = readonly_fields = MEDIA_FIELDS


class EventInline(admin.TabularInline):
    model = Event
    extra = 0
    can_delete = False
    fields = readonly_fields = EVENT_FIELDS


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["tracking_id", "tenant", "artisan_id", "stage", "language", "updated_at"]
    list_filter = ["stage", "tenant"]
    search_fields = ["tracking_id", "artisan_id", "catalog_id"]
    readonly_fields = [f.name for f in Submission._meta.fields]
    inlines = [MediaInline, EventInline]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "status", "attempts", "submission", "created_at", "sent_at"]
    list_filter = ["status", "topic"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
