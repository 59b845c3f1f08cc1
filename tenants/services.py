import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tenants.api_key_cache import api_key_cache
from tenants.models import ApiKey, Membership, Tenant, UploadLink
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


def api_key_revoke(*, api_key: ApiKey) -> bool:
    """True if this call revoked it. The next request with the key that this process serves gets
    a 401; every other process forgets the key within api_key_cache.CACHE_SECONDS (5 s)."""
    revoked = bool(ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))
    # Now, and again once committed: a request of this process could remember the key as live
    # between the two, while the revocation is not yet visible to it.
    api_key_cache.forget(api_key.hashed_key)
    transaction.on_commit(lambda: api_key_cache.forget(api_key.hashed_key))
    return revoked


def api_key_rename(*, api_key: ApiKey, name: str) -> None:
    """Writes the name alone: a whole-row save could put back a revocation or a last use that
    happened while the form was open."""
    ApiKey.objects.filter(pk=api_key.pk).update(name=name)
    api_key.name = name


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The live key for this secret, or None. A key found live is trusted for up to 5 s in this
    process (tenants/api_key_cache.py), so a busy client costs no query per request; a revocation
    reaches every process within that time. Touches last_used_at at most once a minute per
    process so a busy client does not turn every request into a write."""
    hashed = hash_api_key(raw_key)
    key = api_key_cache.get(hashed)
    if key is None:
        looked_up_at = api_key_cache.now()
        key = (
            ApiKey.objects.select_related("tenant")
            .filter(hashed_key=hashed, revoked_at__isnull=True, tenant__is_active=True)
            .first()
        )
        if key is None:
            return None
        api_key_cache.put(hashed, key, looked_up_at=looked_up_at)
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        api_key_cache.stamped(hashed, now)
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


# --- staff -------------------------------------------------------------------------------------
def staff_create(*, username: str, tenant: Tenant, role: str, email: str = "") -> tuple[User, Membership, bool]:
    """Makes `username` a staff member of `tenant` with `role`: creates the user (with no usable
    password: they choose one through staff_password_set_url) or updates an existing one, whose
    password stays. Returns the user, the membership and whether the user was created.

    Never grants superuser, and refuses to touch a superuser or a deactivated account: a
    password-set link for either would be a way round whoever made them so."""
    if role not in Membership.Role.values:
        raise InvalidInput(
            f"Unknown role {role!r}; choose one of: {', '.join(Membership.Role.values)}.", details={"field": "role"}
        )
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if user is None:
            user = User(username=username, email=email, is_staff=True)
            user.set_unusable_password()
            try:
                user.full_clean()
            except ValidationError as exc:
                raise InvalidInput("; ".join(exc.messages), details={"fields": exc.message_dict}) from None
            user.save()
        else:
            if user.is_superuser:
                raise InvalidInput(f"{username} is a superuser and sees every tenant already; left unchanged.")
            if not user.is_active:
                raise InvalidInput(f"{username} is deactivated; a superuser must reactivate the account first.")
            if email:
                try:
                    validate_email(email)
                except ValidationError as exc:
                    raise InvalidInput("; ".join(exc.messages), details={"field": "email"}) from None
                user.email = email
            user.is_staff = True
            user.save(update_fields=["is_staff", "email"])
        membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return user, membership, created


def staff_password_set_url(*, user: User) -> str:
    """The address where `user` chooses a password (Django's password reset confirmation). The
    token is bound to the current password hash and last login, so it works once: setting a
    password or logging in spends it. It also expires after PASSWORD_RESET_TIMEOUT."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.PORTAL_BASE_URL + path
