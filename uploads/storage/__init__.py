"""Which storage backend this deployment uses: S3 when S3_RAW_MEDIA_BUCKET is set, else local."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from uploads.storage.base import (
    MAX_SINGLE_PUT_BYTES,
    PartsRejected,
    SignedPost,
    SignedRequest,
    StorageBackend,
    StorageError,
    StoredObject,
    StoredPart,
    UploadNotFound,
)
from uploads.storage.local import LocalStorage
from uploads.storage.s3 import S3Storage

__all__ = [
    "MAX_SINGLE_PUT_BYTES",
    "LocalStorage",
    "PartsRejected",
    "S3Storage",
    "SignedPost",
    "SignedRequest",
    "StorageBackend",
    "StorageError",
    "StoredObject",
    "StoredPart",
    "UploadNotFound",
    "get_storage",
]


def get_storage() -> StorageBackend:
    return _storage_for(settings.S3_RAW_MEDIA_BUCKET, settings.AWS_REGION, str(settings.UPLOADS_LOCAL_ROOT))


@lru_cache(maxsize=8)
def _storage_for(bucket: str, region: str, local_root: str) -> StorageBackend:
    """Cached per configuration, so settings overrides in tests get their own backend."""
    if bucket:
        return S3Storage(bucket=bucket, region=region)
    return LocalStorage(Path(local_root))
