"""Domain errors. Services raise these; portal.exceptions renders each as
`{"error": {"code", "message", "details"}}` with its status."""

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(DomainError):
    code = "invalid_input"


class NotFound(DomainError):
    """Also the answer for another tenant's ids: existence is not disclosed across tenants."""

    status_code = 404
    code = "not_found"


class TenantMismatch(DomainError):
    status_code = 403
    code = "tenant_mismatch"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PartsMismatch(Conflict):
    code = "parts_mismatch"


class ObjectMissing(Conflict):
    code = "object_missing"


class QuotaExceeded(DomainError):
    """One of the tenant's caps on what it has in flight is reached (open uploads, reserved bytes,
    files per submission). A 409, not a 429: no wait makes it pass; finishing or aborting
    uploads does, or a higher cap for the tenant."""

    status_code = 409
    code = "quota_exceeded"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class UrlExpired(DomainError):
    status_code = 403
    code = "url_expired"


class UrlInvalid(DomainError):
    status_code = 403
    code = "url_invalid"


class StorageUnavailable(DomainError):
    status_code = 503
    code = "storage_unavailable"


class LengthRequired(DomainError):
    status_code = 411
    code = "length_required"


class UploadClosed(Conflict):
    """The upload was completed, aborted or has expired: it takes no more parts."""

    code = "upload_closed"


class AlreadyStored(DomainError):
    """A single-PUT URL writes its object once: no later PUT can swap the bytes that were checked."""

    status_code = 412
    code = "already_stored"


class UploadLinkUnusable(DomainError):
    """An upload link that cannot start a session; its holder gets a page that says why."""

    status_code = 410
    code = "link_unusable"


class UploadLinkInvalid(UploadLinkUnusable):
    status_code = 400
    code = "link_invalid"


class UploadLinkExpired(UploadLinkUnusable):
    code = "link_expired"


class UploadLinkRevoked(UploadLinkUnusable):
    code = "link_revoked"


class ArtisanMismatch(TenantMismatch):
    """An upload link's session acts for its own artisan only."""

    code = "artisan_mismatch"


class NotAuthenticated(DomainError):
    """No session (staff login or upload link) where one is needed."""

    status_code = 401
    code = "not_authenticated"


class CrossSiteRefused(DomainError):
    """A request whose Origin (or Sec-Fetch-Site) is not this site: the stand-in for a CSRF
    token on routes whose stock client (Uppy) cannot send one."""

    status_code = 403
    code = "cross_site_refused"


class MalformedBody(InvalidInput):
    code = "malformed_request"
