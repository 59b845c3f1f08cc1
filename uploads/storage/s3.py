"""The S3 backend: django-storages' S3 storage supplies the configured boto3 client; this
module is the only one that speaks S3. Works against AWS or any S3-compatible endpoint set
through boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from storages.backends.s3 import S3Storage as DjangoS3Storage

from uploads.storage.base import (
    PartsRejected,
    SignedPost,
    SignedRequest,
    StorageError,
    StoredObject,
    StoredPart,
    UploadNotFound,
)
from uploads.storage.s3_signing import S3Presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Storage:
    def __init__(self, *, bucket: str, region: str) -> None:
        self.bucket = bucket
        self.region = region

    @cached_property
    def client(self) -> "S3Client":
        # Bounded like SQS's client: a stalled S3 holds a request (complete, progress) for
        # seconds, not botocore's default 60 s per attempt. CompleteMultipartUpload keeps its
        # connection alive with whitespace while S3 assembles, so the read timeout only has to
        # cover a silence, not the whole assembly.
        style = _addressing_style()
        s3_options: Any = {"addressing_style": style} if style else None  # the setting's value, unchecked
        config = Config(
            s3=s3_options,
            signature_version="s3v4",
            connect_timeout=settings.AWS_S3_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.AWS_S3_READ_TIMEOUT_SECONDS,
            retries={"total_max_attempts": settings.AWS_S3_MAX_ATTEMPTS, "mode": "standard"},
        )
        storage = DjangoS3Storage(bucket_name=self.bucket, region_name=self.region, client_config=config)
        return storage.connection.meta.client

    @cached_property
    def presigner(self) -> S3Presigner:
        """Part and PUT URLs signed without botocore's per-request machinery: the same URL as
        generate_presigned_url, byte for byte, at a fraction of the cost (s3_signing)."""
        return S3Presigner(self.client, self.bucket)

    def object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def presign_put(
        self, *, key: str, content_type: str, size: int | None, expires_in: int, max_bytes: int | None = None
    ) -> SignedRequest:
        # If-None-Match: * (S3 conditional writes): the URL creates the object once; a replay
        # after completion cannot swap the bytes the portal checked.
        if size is None:
            # Without a signed Content-Length S3 takes any body up to 5 GiB: no bound the portal
            # could carry (max_bytes) holds, so such a URL is never signed; presign_post is the way.
            raise ValueError("S3 cannot bound a PUT without a size; sign a form POST (presign_post) instead.")
        url = self.presigner.put_object(key=key, content_type=content_type, size=size, expires_in=expires_in)
        return _signed(url, expires_in, {"Content-Type": content_type, "If-None-Match": "*"})

    def presign_get(self, *, key: str, expires_in: int, content_type: str | None = None) -> SignedRequest:
        # The same client, signature and addressing as the PUT URLs: a preview URL reaches the
        # bucket by the route an upload does. S3 itself answers Range requests with 206.
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = content_type
        return self._presign("get_object", params, expires_in, {}, method="GET")

    def presign_post(self, *, key: str, content_type: str, max_bytes: int, expires_in: int) -> SignedPost:
        # S3 itself refuses a file outside content-length-range (EntityTooLarge/EntityTooSmall)
        # or of another Content-Type, so the size rule holds without the client declaring one.
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in,
        )
        # Form clients (Uppy) report `url + key` as the object's location: the bucket URL must
        # end with '/', which boto3's path-style URL does not.
        url = post["url"] if post["url"].endswith("/") else post["url"] + "/"
        return SignedPost(
            url=url,
            fields={k: str(v) for k, v in post["fields"].items()},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )

    def presign_parts(
        self, *, key: str, upload_id: str, parts: Sequence[tuple[int, int | None]], expires_in: int
    ) -> list[SignedRequest]:
        return [
            _signed(
                self.presigner.upload_part(
                    key=key, upload_id=upload_id, part_number=n, size=size, expires_in=expires_in
                ),
                expires_in,
                {},
            )
            for n, size in parts
        ]

    def _presign(
        self, operation: str, params: dict[str, Any], expires_in: int, headers: dict[str, str], method: str = "PUT"
    ) -> SignedRequest:
        # Signing is local computation: no request reaches S3 here.
        url = self.client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)
        return _signed(url, expires_in, headers, method)

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

    def ping(self) -> None:
        """HeadBucket: the bucket exists and these credentials reach it."""
        with _translated_errors():
            self.client.head_bucket(Bucket=self.bucket)


def _signed(url: str, expires_in: int, headers: dict[str, str], method: str = "PUT") -> SignedRequest:
    return SignedRequest(
        url=url, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in), headers=headers, method=method
    )


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


# --- bucket set-up (manage.py s3_setup_bucket) ----------------------------------------------------
CORS_RULE_ID = "portal-browser-uploads"
LIFECYCLE_RULE_ID = "portal-abort-incomplete-multipart"
ABORT_INCOMPLETE_AFTER_DAYS = 8  # a backstop one day beyond the portal's own 7-day resume window
# The headers the portal's URLs are signed with: Content-Type and If-None-Match on single PUTs;
# part PUTs and form POSTs (multipart/form-data, a CORS "simple" request) need none of their own.
CORS_ALLOWED_HEADERS = ["Content-Type", "If-None-Match"]
CORS_MAX_AGE_SECONDS = 3600


def setup_bucket(*, bucket: str, region: str, origins: Sequence[str]) -> list[str]:
    """Writes what browsers uploading straight to the bucket need: a CORS rule (PUT and POST from
    `origins`, the signed headers, ETag exposed, since multipart completion needs every part's
    ETag) and a lifecycle rule aborting incomplete multipart uploads. Rules are merged by ID, so
    other CORS and lifecycle rules stay; running it again changes nothing. Returns what it did,
    one line per rule."""
    client = S3Storage(bucket=bucket, region=region).client
    cors_rule: dict[str, Any] = {
        "ID": CORS_RULE_ID,
        "AllowedMethods": ["PUT", "POST"],
        "AllowedOrigins": sorted({o.rstrip("/") for o in origins}),
        "AllowedHeaders": CORS_ALLOWED_HEADERS,
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
    }
    lifecycle_rule: dict[str, Any] = {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_AFTER_DAYS},
    }
    done: list[str] = []
    with _translated_errors():
        cors_rules = _existing_rules(
            lambda: client.get_bucket_cors(Bucket=bucket)["CORSRules"], "NoSuchCORSConfiguration"
        )
        merged, changed = _merged(cors_rules, cors_rule)
        if changed:
            client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": merged})  # type: ignore[typeddict-item]
        done.append(
            f"CORS rule {CORS_RULE_ID} {'written' if changed else 'unchanged'}: PUT, POST from "
            f"{', '.join(cors_rule['AllowedOrigins']) or '(no origin)'}; headers {', '.join(CORS_ALLOWED_HEADERS)}; "
            f"exposes ETag"
        )
        lifecycle_rules = _existing_rules(
            lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"], "NoSuchLifecycleConfiguration"
        )
        merged, changed = _merged(lifecycle_rules, lifecycle_rule)
        if changed:
            client.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={"Rules": merged},  # type: ignore[typeddict-item]
            )
        done.append(
            f"Lifecycle rule {LIFECYCLE_RULE_ID} {'written' if changed else 'unchanged'}: incomplete multipart "
            f"uploads aborted {ABORT_INCOMPLETE_AFTER_DAYS} days after they began"
        )
    return done


def _existing_rules(read: Any, missing_code: str) -> list[dict[str, Any]]:
    try:
        return list(read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == missing_code:
            return []
        raise


def _merged(rules: list[dict[str, Any]], rule: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """`rules` with `rule` in place of the one with its ID (or added); and whether that changed
    anything. S3 echoes a rule with fields of its own (an empty Prefix, say), so a rule counts as
    unchanged when every field we set reads back the same."""
    current = next((r for r in rules if r.get("ID") == rule["ID"]), None)
    unchanged = current is not None and all(_same(current.get(k), v) for k, v in rule.items())
    others = [r for r in rules if r.get("ID") != rule["ID"]]
    return [*others, rule], not unchanged


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return bool(a == b)
