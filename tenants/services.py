import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import transaction
from django.utils import timezone

from tenants.models import ApiKey, Tenant, UploadLink
from uploads.errors import InvalidInput, UploadLinkExpired, UploadLinkInvalid, UploadLinkRevoked
from uploads.keys import validate_artisan_id

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


# --- upload links ----------------------------------------------------------------------------
_LINK_SALT = "tenants.upload_link"
# The token rides in the URL's fragment: browsers never send a fragment to a server, so the
# secret stays out of access logs, proxies and Referer headers. The page posts it once.
UPLOAD_LINK_PATH = "/upload/link"
MAX_UPLOAD_LINK_DAYS = 90


def upload_link_create(
    *,
    tenant: Tenant,
    artisan_id: str,
    days: int | None = None,
    note: str = "",
    created_by: User | None = None,
) -> tuple[UploadLink, str]:
    """Returns the row and the link's path (`/upload/link#<token>`); prefix it with the site's
    address. The token is a signature over the row's id, so only this portal can mint one."""
    validate_artisan_id(artisan_id)
    days = settings.UPLOAD_LINK_DEFAULT_DAYS if days is None else days
    if not 1 <= days <= MAX_UPLOAD_LINK_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_UPLOAD_LINK_DAYS}.", details={"field": "days"})
    link = UploadLink.objects.create(
        tenant=tenant,
        artisan_id=artisan_id,
        note=note,
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=days),
    )
    token = signing.dumps(link.id, salt=_LINK_SALT)
    return link, f"{UPLOAD_LINK_PATH}#{token}"


def upload_link_open(*, token: str) -> UploadLink:
    """The link a token grants, if it may still be used; records that it was."""
    try:
        link_id = signing.loads(token, salt=_LINK_SALT)
    except signing.BadSignature:
        raise UploadLinkInvalid("This upload link is not valid. Ask for a new one.") from None
    link = UploadLink.objects.select_related("tenant").filter(pk=link_id).first()
    if link is None:
        raise UploadLinkInvalid("This upload link is not valid. Ask for a new one.")
    upload_link_check(link=link)
    now = timezone.now()
    UploadLink.objects.filter(pk=link.pk).update(last_used_at=now)
    link.last_used_at = now
    return link


def upload_link_check(*, link: UploadLink) -> None:
    """Raises if the link may no longer be used: revoked, expired, or its tenant switched off."""
    if link.revoked_at is not None or not link.tenant.is_active:
        raise UploadLinkRevoked("This upload link was withdrawn. Ask for a new one.")
    if link.expires_at <= timezone.now():
        raise UploadLinkExpired(
            "This upload link has expired. Ask for a new one.", details={"expiredAt": link.expires_at.isoformat()}
        )


def upload_link_revoke(*, link: UploadLink) -> bool:
    """True if this call revoked it; sessions it started stop working on their next request."""
    return bool(UploadLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))
