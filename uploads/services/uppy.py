"""Starting uploads for stock Uppy (Companion's S3 routes): what its file metadata may say, and
how a browser session's scope bounds it. Everything after the start is the media services' own
(sign, progress, complete, abort), so Uppy's uploads obey the same rules as the v1 API's."""

from collections.abc import Mapping
from typing import Any

from tenants.models import Tenant
from uploads.errors import InvalidInput
from uploads.services.media import InitiatedUpload, media_initiate

# The metadata Uppy sends that the portal reads; Uppy sends every other field of the file's
# meta too (name, type, relativePath...), which is ignored: the key never comes from it.
META_ARTISAN_ID = "artisanId"
META_TRACKING_ID = "trackingId"
META_TENANT_ID = "tenantId"


def uppy_meta_value(meta: Mapping[str, Any], name: str) -> str | None:
    """One metadata field, as a non-empty string or None; anything else is the client's error."""
    value = meta.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"metadata {name} must be a string.", details={"field": f"metadata.{name}"})
    return value


def media_initiate_uppy(
    *,
    tenant: Tenant,
    session_artisan_id: str | None,
    content_type: str,
    meta: Mapping[str, Any],
    multipart: bool,
    actor: str,
) -> InitiatedUpload:
    """Starts one file sent by Uppy, which declares no size: a form POST bounded by the tenant's
    limit (`multipart` False) or an open multipart upload checked at completion. The key is the
    portal's, built from the content type; Uppy's file name plays no part.

    An upload link's session (`session_artisan_id`) acts for its artisan only: metadata may
    omit artisanId, never name another; another artisan's trackingId is answered as missing.
    Staff name the artisan. A trackingId adds the file to that open submission."""
    artisan_id = uppy_meta_value(meta, META_ARTISAN_ID) or session_artisan_id
    if artisan_id is None:
        raise InvalidInput(
            f"Set metadata {META_ARTISAN_ID}: the artisan this file is for.",
            details={"field": f"metadata.{META_ARTISAN_ID}"},
        )
    return media_initiate(
        tenant=tenant,
        artisan_id=artisan_id,
        content_type=content_type,
        file_size=None,
        tracking_id=uppy_meta_value(meta, META_TRACKING_ID),
        allow_multipart=multipart,
        open_multipart=multipart,
        form_post=not multipart,
        artisan_scope=session_artisan_id,
        actor=actor,
    )
