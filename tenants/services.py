import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tenants.models import ApiKey, Tenant

KEY_PREFIX = "cup_"  # "catalog upload portal": recognisable in logs and secret scanners
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def tenant_create(*, tenant_id: str, name: str) -> Tenant:
    tenant = Tenant(id=tenant_id, name=name)
    tenant.full_clean()
    tenant.save(force_insert=True)
    return tenant


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str = "", role: str = ApiKey.Role.CLIENT) -> tuple[ApiKey, str]:
    """Returns the row and the raw key; the raw key is never stored, so this is its only showing."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        tenant=tenant, name=name, role=role, prefix=raw[: len(KEY_PREFIX) + 8], hashed_key=hash_api_key(raw)
    )
    return key, raw


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The live key for this secret, or None. Touches last_used_at at most once a minute so a
    busy client does not turn every request into a write."""
    key = (
        ApiKey.objects.select_related("tenant")
        .filter(hashed_key=hash_api_key(raw_key), revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
