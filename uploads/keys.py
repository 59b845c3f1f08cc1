"""Object keys, `{tenantId}/{artisanId}/{trackingId}/{mediaId}.{ext}`, built and checked by pure
functions: no segment can hold a '/', '..' or anything else that escapes its tenant's prefix."""

import re

from uploads.errors import InvalidInput

ARTISAN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TRACKING_ID_PATTERN = "trk_[0-9a-f]{24}"
MEDIA_ID_PATTERN = "med_[0-9a-f]{24}"
_TRACKING_RE = re.compile(f"^{TRACKING_ID_PATTERN}$")
_MEDIA_RE = re.compile(f"^{MEDIA_ID_PATTERN}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,5}$")


def validate_artisan_id(artisan_id: str) -> str:
    if not isinstance(artisan_id, str) or not ARTISAN_ID_RE.fullmatch(artisan_id):
        raise InvalidInput("artisanId must be 1-64 letters, digits, '_' or '-'.", details={"field": "artisanId"})
    return artisan_id


def build_object_key(*, tenant_id: str, artisan_id: str, tracking_id: str, media_id: str, ext: str) -> str:
    for pattern, value, name in (
        (_TENANT_RE, tenant_id, "tenantId"),
        (ARTISAN_ID_RE, artisan_id, "artisanId"),
        (_TRACKING_RE, tracking_id, "trackingId"),
        (_MEDIA_RE, media_id, "mediaId"),
        (_EXT_RE, ext, "extension"),
    ):
        if not pattern.fullmatch(value):
            raise InvalidInput(f"{name} is not valid in an object key.", details={"field": name})
    return f"{tenant_id}/{artisan_id}/{tracking_id}/{media_id}.{ext}"
