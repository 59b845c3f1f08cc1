"""API-key authentication: resolves the tenant once per request, as `request.tenant`."""

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_authenticate


class TenantPrincipal(AnonymousUser):
    """The caller behind an API key: not a Django user, but authenticated as its tenant."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return f"api:{self.tenant.id}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-Api-Key: <key>`."""

    def authenticate(self, request: Request) -> tuple[TenantPrincipal, ApiKey] | None:
        raw = self._raw_key(request)
        if raw is None:
            return None
        key = api_key_authenticate(raw_key=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        request.tenant = key.tenant  # type: ignore[attr-defined]
        return TenantPrincipal(key.tenant), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _raw_key(request: Request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
            return None
        value = request.META.get("HTTP_X_API_KEY", "").strip()
        return value or None


class HasTenant(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return getattr(request, "tenant", None) is not None


class IsClientKey(HasTenant):
    """Uploads take a client key: a leaked pipeline key cannot start or finish uploads."""

    message = "This endpoint takes a client API key."
    role = ApiKey.Role.CLIENT

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and getattr(request.auth, "role", None) == self.role


class IsPipelineKey(IsClientKey):
    """Processing status is reported with a pipeline key: a client cannot mark its own
    submission completed."""

    message = "This endpoint takes a pipeline API key."
    role = ApiKey.Role.PIPELINE
