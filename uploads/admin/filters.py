"""Changelist filters that cost the same whatever the table holds: their choices come from
settings and memberships, never from a DISTINCT over the submissions."""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from tenants.admin_scoping import staff_tenant_ids
from tenants.models import Tenant
from uploads.models import OutboxMessage, Submission
from uploads.selectors import submissions_stuck
from uploads.services.submissions import PRIORITIES


class ChoiceFilter(admin.SimpleListFilter):
    """An exact match on one column, offered from a fixed list."""

    field = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class TenantFilter(ChoiceFilter):
    title = "tenant"
    parameter_name = field = "tenant_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenants = Tenant.objects.order_by("id")
        if not request.user.is_superuser:
            tenants = tenants.filter(pk__in=staff_tenant_ids(request))
        return [(t.pk, f"{t.pk} ({t.name})" if t.name and t.name != t.pk else t.pk) for t in tenants]


class LanguageFilter(ChoiceFilter):
    title = "language"
    parameter_name = field = "language"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, code) for code in settings.UPLOADS_LANGUAGES]


class PriorityFilter(ChoiceFilter):
    title = "priority"
    parameter_name = field = "priority"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(p, p) for p in PRIORITIES]


class StuckFilter(admin.SimpleListFilter):
    title = "progress"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", f"No progress for {settings.ADMIN_STUCK_MINUTES} min")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Submission]) -> QuerySet[Submission]:
        return submissions_stuck(queryset) if self.value() == "yes" else queryset


class FailedMessagesFilter(admin.SimpleListFilter):
    title = "failed messages"
    parameter_name = "failed_messages"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Has failed messages")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Submission]) -> QuerySet[Submission]:
        if self.value() != "yes":
            return queryset
        failed = OutboxMessage.objects.filter(submission=OuterRef("pk"), status=OutboxMessage.Status.FAILED)
        return queryset.filter(Exists(failed))
