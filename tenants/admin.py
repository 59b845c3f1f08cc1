from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tenants.admin_scoping import TenantScopedAdmin
from tenants.auth import operator_tenants
from tenants.models import ApiKey, Membership, Tenant, UploadLink
from tenants.services import MAX_UPLOAD_LINK_DAYS, upload_link_create, upload_link_revoke
from uploads.errors import DomainError
from uploads.keys import validate_artisan_id


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "is_active", "created_at"]
    search_fields = ["id", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "tenant", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant"]
    readonly_fields = ["prefix", "hashed_key", "created_at", "last_used_at"]

    def has_add_permission(self, request: object) -> bool:
        return False  # keys are minted by `manage.py create_api_key`, which shows the secret once


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["tenant", "role"]


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
