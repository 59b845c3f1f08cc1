"""Tenant staff see only their tenants' rows in the admin; superusers see everything."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from tenants.models import Membership


def staff_roles(request: HttpRequest) -> dict[str, str]:
    """Tenant id → the staff member's role there. Cached on the request: the admin asks several
    times per page."""
    cached: dict[str, str] | None = getattr(request, "_staff_roles", None)
    if cached is None:
        user_id = request.user.pk if request.user.is_authenticated else None
        cached = dict(Membership.objects.filter(user_id=user_id).values_list("tenant_id", "role")) if user_id else {}
        request._staff_roles = cached  # type: ignore[attr-defined]
    return cached


def staff_tenant_ids(request: HttpRequest) -> set[str]:
    return set(staff_roles(request))


def operator_tenant_ids(request: HttpRequest) -> set[str]:
    return {tenant for tenant, role in staff_roles(request).items() if role == Membership.Role.OPERATOR}


class TenantScopedAdmin(admin.ModelAdmin):
    """Read access through Membership. `tenant_field` is the lookup path from the model to its tenant id."""

    tenant_field = "tenant_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": staff_tenant_ids(request)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or (request.user.is_staff and bool(staff_tenant_ids(request)))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Rows of other tenants never reach here: get_queryset has filtered them out.
        return self.has_module_permission(request)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Actions marked permissions=["operate"] (retries) are for operators, not viewers."""
        return request.user.is_superuser or (request.user.is_staff and bool(operator_tenant_ids(request)))

    def operates(self, request: HttpRequest, tenant_id: str) -> bool:
        """Whether this user may act on one row of `tenant_id` (its page's buttons and links)."""
        return request.user.is_superuser or (request.user.is_staff and tenant_id in operator_tenant_ids(request))

    def operable(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """The selected rows this user may act on: a viewer of one tenant and operator of another
        acts only on the second's."""
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__in": operator_tenant_ids(request)})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self.require_object(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        self.require_object(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def require_object(self, request: HttpRequest, object_id: str) -> Model:
        """Another tenant's row answers exactly as a missing one: 404 (the admin's own answer is
        a redirect to the list with a message that would say the id exists somewhere)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("Nothing with this id in your tenants.")
        return obj

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """Shown only inside a parent row the user may already view."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
