"""The outbox as staff see it: what the portal still owes a queue or the DynamoDB mirror, and what
ran out of attempts."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.admin_scoping import TenantScopedAdmin
from uploads.models import OutboxMessage
from uploads.services import outbox_retry_failed


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
