"""Who is calling, resolved to one tenant before any query runs, as `request.tenant`: an API key,
a staff member's admin session, or an upload link's session."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from tenants.models import ApiKey, Membership, Tenant, UploadLink
from tenants.services import api_key_authenticate, upload_link_check
from uploads.errors import DomainError, TenantMismatch, UploadLinkUnusable

UPLOAD_LINK_SESSION_KEY = "upload_link_id"
TENANT_HEADER = "X-Tenant-Id"


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


@dataclass(frozen=True)
class SessionGrant:
    """What a browser session may do: upload for one tenant, and for one artisan when it came
    from an upload link. Carries a role like an API key, so the same permissions apply."""

    tenant: Tenant
    artisan_id: str | None  # an upload link's artisan; None: any artisan of the tenant (staff)
    actor: str
    role: str = ApiKey.Role.CLIENT
    expires_at: datetime | None = None  # an upload link's end

    @property
    def is_link(self) -> bool:
        return self.artisan_id is not None


def session_grant(request: HttpRequest, *, tenant_id: str | None = None) -> SessionGrant | None:
    """The grant of this request's session, or None when it has none. An upload link is checked
    on every request (revoking it takes effect at once); staff act as operators of one tenant,
    named by `tenant_id` when they have several. Raises TenantMismatch for a tenant the session
    may not upload to, UploadLinkUnusable for a link withdrawn or expired since it was opened."""
    link_id = request.session.get(UPLOAD_LINK_SESSION_KEY) if hasattr(request, "session") else None
    if link_id:
        link = UploadLink.objects.select_related("tenant").filter(pk=link_id).first()
        if link is None:
            return None
        upload_link_check(link=link)
        if tenant_id not in (None, link.tenant_id):
            raise TenantMismatch("This upload link is for another tenant.", details={"tenantId": tenant_id})
        return SessionGrant(
            tenant=link.tenant, artisan_id=link.artisan_id, actor=f"link:{link.id}", expires_at=link.expires_at
        )
    user = getattr(request, "user", None)
    if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
        return None
    tenants = operator_tenants(user)
    if tenant_id is not None:
        tenant = next((t for t in tenants if t.id == tenant_id), None)
        if tenant is None:
            raise TenantMismatch(
                f"You cannot upload for tenant {tenant_id!r}.", details={"tenantId": tenant_id, "field": TENANT_HEADER}
            )
    elif len(tenants) == 1:
        tenant = tenants[0]
    else:
        raise TenantMismatch(
            f"Say which tenant you upload for with the {TENANT_HEADER} header."
            if tenants
            else "Uploading needs the operator role in a tenant.",
            details={"field": TENANT_HEADER, "tenants": [t.id for t in tenants]},
        )
    return SessionGrant(tenant=tenant, artisan_id=None, actor=f"staff:{user.get_username()}")


def operator_tenants(user: Any) -> list[Tenant]:
    """The active tenants a staff member may upload to: all for a superuser."""
    tenants = Tenant.objects.filter(is_active=True)
    if not user.is_superuser:
        tenants = tenants.filter(memberships__user=user, memberships__role=Membership.Role.OPERATOR)
    return list(tenants.order_by("id"))


class SessionPrincipal(TenantPrincipal):
    def __init__(self, grant: SessionGrant) -> None:
        super().__init__(grant.tenant)
        self.grant = grant

    def __str__(self) -> str:
        return self.grant.actor


class GrantRefused(exceptions.PermissionDenied):
    """A session that may not act here, rendered with the domain error's own code."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message, code=error.code)
        self.domain_error = error


class SessionGrantAuthentication(authentication.SessionAuthentication):
    """The upload page's sessions (staff and upload links) on the v1 API. Tried after API keys;
    an unsafe request must carry the CSRF token, as any session-authenticated request."""

    def authenticate(self, request: Request) -> tuple[SessionPrincipal, SessionGrant] | None:
        django_request = request._request
        try:
            grant = session_grant(django_request, tenant_id=request.META.get("HTTP_X_TENANT_ID") or None)
        except (TenantMismatch, UploadLinkUnusable) as exc:
            raise GrantRefused(exc) from exc
        if grant is None:
            return None
        self.enforce_csrf(request)
        request.tenant = grant.tenant  # type: ignore[attr-defined]
        return SessionPrincipal(grant), grant

    def authenticate_header(self, request: Request) -> str:
        # Without one, DRF turns "not authenticated" into a 403; API keys' Bearer challenge wins.
        return 'Bearer realm="api"'
