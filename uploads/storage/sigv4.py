"""SigV4 query-string signing as botocore does it for S3, reduced to what a presigned
UploadPart or PutObject needs: the values a signature is made of, botocore's quoting rules, the
argument checks that keep unusual calls with boto3, the signature itself, and the endpoint
read from a probe URL. The presigner (uploads.storage.s3_signing) decides when these may be
used."""

import hmac
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlsplit

MAX_PART_NUMBER: Final = 10_000  # S3's range; boto3 would sign any integer
MAX_EXPIRES_SECONDS: Final = 7 * 24 * 3600  # SigV4's longest query-string lifetime

ALGORITHM: Final = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
SAFE_QUERY: Final = "-_.~"  # botocore's percent_encode: RFC 3986 unreserved characters stay
SAFE_KEY: Final = "/~"  # botocore's greedy {Key+} label: slashes stay, as S3 expects
# botocore drops this Content-Type from a presigned request (it is its own form default), so a
# URL for it would differ: boto3 signs that one.
_BOTOCORE_DEFAULT_CONTENT_TYPE: Final = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Endpoint:
    """What boto3's probe URLs say about this client and bucket."""

    base: str  # scheme://netloc/<prefix>, to which the quoted key is appended
    path_prefix: str  # the path before the key: "/" (virtual-hosted) or "/bucket/" (path style)
    host: str  # the host header S3 checks the signature with
    region: str  # the signing region of the credential scope, as boto3's endpoint rules chose it


@dataclass(frozen=True)
class Scope:
    """The per-day, per-credentials part of a signature, cached as one immutable value so
    concurrent threads never see a key of one day with the scope of another."""

    access_key: str
    secret_key: str
    token: str | None
    datestamp: str
    region: str
    credential_param: str  # X-Amz-Credential, percent-encoded
    token_param: str  # X-Amz-Security-Token, percent-encoded (a role's token is ~1 kB to quote)
    scope: str
    signing_key: bytes


class Unsupported(Exception):
    """This call (or this client) is not one the presigner reproduces: boto3 signs it."""


def query_value(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get(name, [""])
    return values[0]


def upload_part_params(bucket: str, key: str, upload_id: str, part_number: int, size: int | None) -> dict[str, Any]:
    # The order is the URL's: uploadId before partNumber, as S3Storage always asked boto3.
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}
    if size is not None:
        params["ContentLength"] = size
    return params


def put_object_params(bucket: str, key: str, content_type: str, size: int) -> dict[str, Any]:
    return {"Bucket": bucket, "Key": key, "ContentType": content_type, "IfNoneMatch": "*", "ContentLength": size}


def check_common(*, key: str, size: int | None, expires_in: int, allow_no_size: bool) -> None:
    if type(key) is not str or not key:
        raise Unsupported
    if size is None:
        if not allow_no_size:
            raise Unsupported
    elif type(size) is not int or size < 0:
        raise Unsupported
    if type(expires_in) is not int or not 1 <= expires_in <= MAX_EXPIRES_SECONDS:
        raise Unsupported


def check_content_type(content_type: str) -> None:
    """Printable ASCII already in SigV4's trimmed form: what botocore signs verbatim."""
    if (
        type(content_type) is not str
        or not content_type
        or not content_type.isascii()
        or not content_type.isprintable()
        or content_type != " ".join(content_type.split())
        or content_type == _BOTOCORE_DEFAULT_CONTENT_TYPE
    ):
        raise Unsupported


def host_of(scheme: str, netloc: str) -> str:
    """The host header botocore signs: lower-case, without user info or the scheme's default port."""
    host = netloc.rpartition("@")[2].lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    return host


def hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode(), "sha256")


def request_signature(scope: Scope, timestamp: str, canonical_request: str) -> str:
    request_hash = sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope.scope}\n{request_hash}"
    return hmac.digest(scope.signing_key, string_to_sign.encode(), "sha256").hex()


def endpoint_of(url: str, key: str) -> Endpoint | str:
    """What a presigned URL for `key` says of its endpoint (the prefix before the key, the host
    signed, the region), or why it cannot be read that way."""
    parts = urlsplit(url)
    quoted_key = quote(key, safe=SAFE_KEY)
    if not parts.path.endswith(quoted_key) or parts.fragment:
        return "the key is not the end of the URL's path, quoted as expected"
    credential = query_value(url, "X-Amz-Credential").split("/")
    if len(credential) != 5 or credential[3:] != ["s3", "aws4_request"]:
        return "the probe URL is not signed with SigV4 for s3"
    path_prefix = parts.path[: -len(quoted_key)]
    return Endpoint(
        base=f"{parts.scheme}://{parts.netloc}{path_prefix}",
        path_prefix=path_prefix,
        host=host_of(parts.scheme, parts.netloc),
        region=credential[2],
    )
