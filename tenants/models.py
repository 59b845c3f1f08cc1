import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

TENANT_ID_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,62}$",
    "Tenant ids are 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit.",
)


class Tenant(models.Model):
    """A customer of the portal. Its id is the first segment of every object key it owns."""

    id = models.CharField(primary_key=True, max_length=63, validators=[TENANT_ID_VALIDATOR])
    name = models.CharField(max_length=200)
    # Null: the portal-wide default from settings applies.
    max_photo_bytes = models.BigIntegerField(null=True, blank=True)
    max_audio_bytes = models.BigIntegerField(null=True, blank=True)
    # Caps on what one tenant has in flight (uploads/services/caps.py). Null: the portal default.
    max_open_uploads = models.PositiveIntegerField(
        null=True, blank=True, help_text="Files being uploaded at once: pending, not finished, aborted or expired."
    )
    max_reserved_bytes = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Bytes those files may still bring: their declared sizes; a file of undeclared size "
        "counts as its kind's size limit.",
    )
    max_files_per_submission = models.PositiveIntegerField(
        null=True, blank=True, help_text="Files in one submission, aborted and expired ones not counted."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class ApiKey(models.Model):
    """A tenant's credential. Only a SHA-256 of the secret is kept: keys are 256-bit random,
    so a slow password hash would add latency to every request and no security."""

    class Role(models.TextChoices):
        CLIENT = "client", "Client (uploads)"
        PIPELINE = "pipeline", "Pipeline (reports processing status)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)
    prefix = models.CharField(max_length=16, unique=True, help_text="Shown in lists to tell keys apart.")
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant_id})"


class Membership(models.Model):
    """A staff user's role in one tenant: what the admin lets them see and do."""

    class Role(models.TextChoices):
        VIEWER = "viewer"
        OPERATOR = "operator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"


def new_upload_link_id() -> str:
    return "lnk_" + secrets.token_hex(12)


class UploadLink(models.Model):
    """A grant staff hand to one artisan: whoever opens it may upload for that tenant and
    artisan only, until it expires or is revoked. Only its id travels in the signed token, so the
    row is the authority: revoking it ends every session it started on their next request."""

    id = models.CharField(primary_key=True, max_length=32, default=new_upload_link_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="upload_links")
    artisan_id = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True, help_text="Who it was sent to, and how.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.tenant_id}/{self.artisan_id})"
