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
    def object_uri(self, key: str) -> str: ...

    def presign_put(self, *, key: str, content_type: str, size: int | None, expires_in: int) -> SignedRequest: ...

    def create_multipart(self, *, key: str, content_type: str) -> str: ...

    def presign_part(
        self, *, key: str, upload_id: str, part_number: int, size: int, expires_in: int
    ) -> SignedRequest: ...

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
