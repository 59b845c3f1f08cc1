"""The one interface both storage backends implement. Clients only ever see signed requests
to PUT bytes to; which backend signed them is not their business."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3's limit for one PUT; the local backend keeps it too


@dataclass(frozen=True)
class SignedRequest:
    url: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "PUT"


@dataclass(frozen=True)
class SignedPost:
    """An HTML-form upload (S3's presigned POST): send `fields`, then the file as the last field
    named `file`, as multipart/form-data to `url`. The policy inside bounds key, type and size."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    size: int
    etag: str


@dataclass(frozen=True)
class StoredObject:
    size: int
    etag: str
    content_type: str


class UploadNotFound(Exception):
    """The multipart upload is gone at storage: completed, aborted or never created."""


class PartsRejected(Exception):
    """Storage refused the part list at completion (S3's InvalidPart, EntityTooSmall...): a part
    changed since it was listed. The client's to fix, by re-checking progress."""


class StorageError(Exception):
    """Storage could not be reached or refused the request for a reason that is not the caller's."""


class StorageBackend(Protocol):
    bucket: str  # the S3 bucket's name; empty for the local backend (its object URIs are file URIs)

    def object_uri(self, key: str) -> str: ...

    def presign_put(
        self, *, key: str, content_type: str, size: int | None, expires_in: int, max_bytes: int | None = None
    ) -> SignedRequest:
        """A single PUT signed for exactly `size` bytes. Without a size, only a backend that can
        bound the body itself signs one (the local backend, up to `max_bytes`); S3 refuses, as it
        would take any body: a form POST (presign_post) carries the bound there."""
        ...

    def presign_get(self, *, key: str, expires_in: int, content_type: str | None = None) -> SignedRequest:
        """A short-lived GET of a finished object (method "GET"), for staff previews: the bytes
        go from storage to the browser without passing through the portal. `content_type`, when
        given, is the type the answer declares (S3's ResponseContentType); otherwise the type
        stored with the object. Supports single byte ranges, as audio players seek with them."""
        ...

    def presign_post(self, *, key: str, content_type: str, max_bytes: int, expires_in: int) -> SignedPost:
        """A form upload creating `key` with 1 to `max_bytes` bytes of `content_type`: for
        clients that cannot declare a size up front (stock Uppy), the size rule travels in the
        policy and storage enforces it."""
        ...

    def create_multipart(self, *, key: str, content_type: str) -> str: ...

    def presign_parts(
        self, *, key: str, upload_id: str, parts: Sequence[tuple[int, int | None]], expires_in: int
    ) -> list[SignedRequest]:
        """A URL for each (part number, size) of `parts`, in their order: one batch of a
        client's request, so what every URL shares is worked out once. A size of None: any part
        up to S3's 5 GiB limit (clients that choose their own part size); the parts are then
        checked at completion instead."""
        ...

    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """Every part storage holds, all pages, ordered by part number. Raises UploadNotFound."""
        ...

    def complete_multipart(self, *, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        """Raises UploadNotFound if the upload no longer exists (possibly because it completed)."""
        ...

    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        """Idempotent: aborting an upload that is already gone is not an error."""
        ...

    def head(self, *, key: str) -> StoredObject | None: ...

    def delete(self, *, key: str) -> None: ...

    def ping(self) -> None:
        """Raises unless storage takes requests now (readiness probes; see portal/health.py)."""
        ...
