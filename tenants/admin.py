from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from tenants.admin_scoping import TenantScopedAdmin
from tenants.auth import operator_tenants
from tenants.models import ApiKey, Membership, Tenant, UploadLink
from tenants.services import (
    MAX_UPLOAD_LINK_DAYS,
    api_key_create,
    api_key_rename,
    api_key_revoke,
    upload_link_create,
    upload_link_revoke,
)
from uploads.errors import DomainError
from uploads.keys import validate_artisan_id
from uploads.services.caps import tenant_in_flight


class SuperuserOnlyAdmin(admin.ModelAdmin):
    """Tenants and memberships decide who sees what, so only superusers touch them, whatever model
    permissions a staff user was given."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


# A tenant's limits, each with the setting that holds the portal's default for an empty field.
TENANT_LIMIT_DEFAULTS = {
    "max_photo_bytes": "UPLOADS_DEFAULT_MAX_PHOTO_BYTES",
    "max_audio_bytes": "UPLOADS_DEFAULT_MAX_AUDIO_BYTES",
    "max_open_uploads": "UPLOADS_DEFAULT_MAX_OPEN_UPLOADS",
    "max_reserved_bytes": "UPLOADS_DEFAULT_MAX_RESERVED_BYTES",
    "max_files_per_submission": "UPLOADS_DEFAULT_MAX_FILES_PER_SUBMISSION",
}


@admin.register(Tenant)
class TenantAdmin(SuperuserOnlyAdmin):
    list_display = ["id", "name", "is_active", "created_at"]
    search_fields = ["id", "name"]
    readonly_fields = ["in_flight"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        limits = [*TENANT_LIMIT_DEFAULTS, *(["in_flight"] if obj is not None else [])]
        return [(None, {"fields": ["id", "name", "is_active"]}), ("Limits", {"fields": limits})]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        default = TENANT_LIMIT_DEFAULTS.get(db_field.name)
        if field is not None and default is not None:
            field.help_text = (
                f"{db_field.help_text} Empty: the portal's default, {getattr(settings, default):,}.".lstrip()
            )
        return field

    @admin.display(description="in flight now")
    def in_flight(self, tenant: Tenant) -> str:
        figures = tenant_in_flight(tenant=tenant)
        return f"{figures.open_uploads:,} open uploads reserving {figures.reserved_bytes:,} bytes"


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["tenant", "role"]
    search_fields = ["user__username", "user__email", "tenant__id"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user", "tenant"]


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    """Operators mint keys for their tenants (the secret is shown once, on the next page), name
    and revoke them; viewers see which keys exist and when each was last used. The hash of the
    secret is never shown: it is all anyone needs to recognise the key in a leaked database."""

    list_display = ["prefix", "label", "tenant", "role", "created_at", "last_used_at", "state"]
    list_display_links = ["prefix", "label"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter), "role", ApiKeyStateFilter]
    search_fields = ["prefix", "name"]
    list_select_related = ["tenant"]
    fields = ["prefix", "name", "tenant", "role", "state", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "tenant", "role", "state", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="name", ordering="name")
    def label(self, key: ApiKey) -> str:
        return key.name or f"(unnamed {key.role} key)"

    @admin.display(description="state")
    def state(self, key: ApiKey) -> str:
        return "revoked" if key.revoked_at else "active"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_operate_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if obj is None:
            return self.has_operate_permission(request)
        return isinstance(obj, ApiKey) and self.operates(request, obj.tenant_id)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser  # staff revoke: the row stays as the record of the key

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ["tenant", "name", "role"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "name" and field is not None:
            field.required = True
            field.help_text = "What uses this key, e.g. 'Android app' or 'pipeline (production)'."
        return field

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":  # only on the add form: a key never moves to another tenant
            kwargs["queryset"] = Tenant.objects.filter(pk__in=[t.pk for t in operator_tenants(request.user)])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            api_key_rename(api_key=obj, name=form.cleaned_data["name"])
            return
        # The form offered only the tenants this user operates (formfield_for_foreignkey).
        key, raw = api_key_create(
            tenant=form.cleaned_data["tenant"], name=form.cleaned_data["name"], role=form.cleaned_data["role"]
        )
        obj.pk, obj.prefix, obj.created_at = key.pk, key.prefix, key.created_at
        self.message_user(
            request,
            f"API key {key.prefix}… ({key.role}) for {key.tenant_id} created. "
            f"Copy it now; it is not shown again: {raw}",
            messages.SUCCESS,
        )

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        # Straight to the new key's page, where the one-time message shows the secret.
        return HttpResponseRedirect(reverse("admin:tenants_apikey_change", args=[obj.pk]))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any | None = None,
    ) -> HttpResponse:
        context["can_revoke"] = obj is not None and obj.revoked_at is None and self.operates(request, obj.tenant_id)
        if add:
            context.update(show_save_and_add_another=False, show_save_and_continue=False)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self) -> list[Any]:
        revoke = path(
            "<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="tenants_apikey_revoke"
        )
        return [revoke, *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The key's page's way to revoke it: a confirmation, then the revocation."""
        key = self.require_object(request, object_id)
        assert isinstance(key, ApiKey)
        if not self.operates(request, key.tenant_id):
            raise PermissionDenied
        if request.method == "POST":
            if api_key_revoke(api_key=key):
                self.message_user(request, f"API key {key.prefix}… revoked; it no longer works.", messages.SUCCESS)
            else:
                self.message_user(request, f"API key {key.prefix}… was already revoked.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:tenants_apikey_change", args=[key.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke this API key?",
            "opts": self.opts,
            "key": key,
        }
        return TemplateResponse(request, "admin/tenants/apikey/revoke_confirmation.html", context)

    @admin.action(description="Revoke selected API keys", permissions=["operate"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = sum(api_key_revoke(api_key=key) for key in self.operable(request, queryset))
        self.message_user(request, f"{revoked} API key(s) revoked.", messages.SUCCESS)


class UploadLinkForm(forms.ModelForm):
    days = forms.IntegerField(
        min_value=1,
        max_value=MAX_UPLOAD_LINK_DAYS,
        initial=settings.UPLOAD_LINK_DEFAULT_DAYS,
        help_text="How long the link works.",
    )

    class Meta:
        model = UploadLink
        fields = ["tenant", "artisan_id", "note"]

    def clean_artisan_id(self) -> str:
        artisan_id: str = self.cleaned_data["artisan_id"]
        try:
            return validate_artisan_id(artisan_id)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(UploadLink)
class UploadLinkAdmin(TenantScopedAdmin):
    """Operators create links for their tenants' artisans (the URL is shown once, on the next
    page) and revoke them; viewers see who holds one."""

    list_display = ["id", "tenant", "artisan_id", "note", "state", "expires_at", "last_used_at", "created_by"]
    list_filter = [("tenant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "artisan_id", "note"]
    list_select_related = ["tenant", "created_by"]
    readonly_fields = ["id", "tenant", "artisan_id", "note", "created_by", "created_at", "expires_at"]
    readonly_fields += ["revoked_at", "last_used_at"]
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, link: UploadLink) -> str:
        if link.revoked_at:
            return "revoked"
        return "expired" if link.expires_at <= timezone.now() else "active"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_operate_permission(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs.pop("fields", None)  # "days" is the form's own field, not the model's: let Meta.fields decide
        form = super().get_form(request, obj, change=change, form=UploadLinkForm, fields=None, **kwargs)
        allowed = operator_tenants(request.user)
        tenant_field = form.base_fields["tenant"]
        assert isinstance(tenant_field, forms.ModelChoiceField)
        tenant_field.queryset = Tenant.objects.filter(pk__in=[t.pk for t in allowed])
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["tenant", "artisan_id", "note", "days"]})]
        return super().get_fieldsets(request, obj)

    def save_model(self, request: HttpRequest, obj: UploadLink, form: Any, change: bool) -> None:
        if change:
            return  # links do not change; they are revoked
        # The form offers only the tenants this user operates (get_form) and checked its input.
        link, path = upload_link_create(
            tenant=form.cleaned_data["tenant"],
            artisan_id=form.cleaned_data["artisan_id"],
            days=form.cleaned_data["days"],
            note=form.cleaned_data["note"],
            created_by=request.user if isinstance(request.user, User) else None,
        )
        obj.pk = link.pk
        obj.expires_at = link.expires_at
        url = request.build_absolute_uri(path.split("#", 1)[0]) + "#" + path.split("#", 1)[1]
        self.message_user(
            request,
            f"Upload link for artisan {link.artisan_id} created. Send this address now; it is not shown again: {url}",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke selected upload links", permissions=["operate"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[UploadLink]) -> None:
        revoked = sum(upload_link_revoke(link=link) for link in self.operable(request, queryset))
        self.message_user(request, f"{revoked} upload link(s) revoked.", messages.SUCCESS)
