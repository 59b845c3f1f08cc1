"""The S3 backend: django-storages' S3 storage supplies the configured boto3 client; this
module is the only one that speaks S3. Works against AWS or any S3-compatible endpoint set
through boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from storages.backends.s3 import S3Storage as DjangoS3Storage

from uploads.storage.base import PartsRejected, SignedRequest, StorageError, StoredObject, StoredPart, UploadNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Storage:
    def __init__(self, *, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region

    @cached_property
    def client(self) -> "S3Client":
        storage = DjangoS3Storage(
            bucket_name=self.bucket,
            region_name=self.region,
            signature_version="s3v4",
            addressing_style=_addressing_style(),
        )
        return storage.connection.meta.client

    def object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def presign_put(self, *, key: str, content_type: str, size: int | None, expires_in: int) -> SignedRequest:
        # If-None-Match: * (S3 conditional writes): the URL creates the object once; a replay
        # after completion cannot swap the bytes the portal checked.
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": content_type, "IfNoneMatch": "*"}
        if size is not None:
            params["ContentLength"] = size
        return self._presign("put_object", params, expires_in, {"Content-Type": content_type, "If-None-Match": "*"})

    def presign_part(self, *, key: str, upload_id: str, part_number: int, size: int, expires_in: int) -> SignedRequest:
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
            "ContentLength": size,
        }
        return self._presign("upload_part", params, expires_in, {})

    def _presign(
        self, operation: str, params: dict[str, Any], expires_in: int, headers: dict[str, str]
    ) -> SignedRequest:
        # Signing is local computation: no request reaches S3 here.
        url = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)
        return SignedRequest(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in), headers=headers)

    def create_multipart(self, *, key: str, content_type: str) -> str:
        with _translated_errors():
            response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return response["UploadId"]

    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        with _translated_errors():
            paginator = self.client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                parts.extend(
                    StoredPart(part_number=p["PartNumber"], size=p["Size"], etag=p["ETag"])
                    for p in page.get("Parts", [])
                )
        return sorted(parts, key=lambda p: p.part_number)

    def complete_multipart(self, *, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        with _translated_errors():
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]},
            )

    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        try:
            with _translated_errors():
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except UploadNotFound:
            pass

    def head(self, *, key: str) -> StoredObject | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc
        return StoredObject(
            size=response["ContentLength"], etag=response["ETag"], content_type=response.get("ContentType", "")
        )

    def delete(self, *, key: str) -> None:
        with _translated_errors():
            self.client.delete_object(Bucket=self.bucket, Key=key)


_PART_ERRORS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}


@contextmanager
def _translated_errors() -> Iterator[None]:
    """boto3's exceptions stop here: callers see UploadNotFound or StorageError."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "NoSuchUpload":
            raise UploadNotFound(str(exc)) from exc
        if code in _PART_ERRORS:
            raise PartsRejected(str(exc)) from exc
        raise StorageError(str(exc)) from exc
    except BotoCoreError as exc:
        raise StorageError(str(exc)) from exc


def _addressing_style() -> str | None:
    """On AWS, regional virtual-hosted URLs (bucket.s3.<region>.amazonaws.com): boto3's default
    global host answers a new bucket with a redirect that a browser's PUT does not survive.
    Against an S3-compatible endpoint, botocore's own choice (path style). AWS_S3_ADDRESSING_STYLE
    overrides both."""
    if settings.AWS_S3_ADDRESSING_STYLE:
        return str(settings.AWS_S3_ADDRESSING_STYLE)
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    return "virtual"
