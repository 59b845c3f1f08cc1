"""The local backend's signed URLs and forms: what S3 signs and checks for a presigned PUT,
UploadPart, POST policy or GET, done with django.core.signing. Each kind has its own salt, so a
token of one kind is worthless as another (an upload URL reads nothing, a download URL uploads
nothing); every claim, the key included, is inside the signature."""

import hashlib
import hmac
import json
import re
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes

from uploads.errors import InvalidInput, LengthRequired, TooLarge, UrlExpired, UrlInvalid
from uploads.storage.base import MAX_SINGLE_PUT_BYTES, SignedPost, SignedRequest

_PUT_SALT = "uploads.storage.local.put"
_POST_SALT = "uploads.storage.local.post"
_GET_SALT = "uploads.storage.local.get"  # its own salt: an upload token reads nothing, and back


@dataclass(frozen=True)
class PostPolicy:
    """What a verified form POST may store: S3's policy conditions, as the local backend signs them."""

    key: str
    content_type: str
    max_bytes: int


@dataclass(frozen=True)
class GetGrant:
    """What a verified GET token lets its holder read: one key, answered as `content_type`
    (None: the type stored with the object)."""

    key: str
    content_type: str | None


def sign_put(claims: dict[str, Any], expires_in: int, headers: dict[str, str]) -> SignedRequest:
    expires = int(time.time()) + expires_in
    token = signed_token({**claims, "e": expires}, salt=_PUT_SALT)
    return SignedRequest(
        url=put_url(token),
        expires_at=datetime.fromtimestamp(expires, UTC),
        headers=headers,
    )


_compact_json = json.JSONEncoder(separators=(",", ":"))  # signing.JSONSerializer's
_json_string = json.encoder.encode_basestring_ascii  # what that encoder writes for a str
_macs: dict[tuple[str, str], "hmac.HMAC"] = {}


def signed_token(claims: dict[str, Any], *, salt: str) -> str:
    """`signing.dumps(claims, salt=salt, compress=True)`, the same string, faster: the JSON
    encoder and the HMAC's derived key are made once, not per token. tests/unit/
    test_local_signing_speed.py pins it to signing.dumps, and signing.loads reads it: the format
    stays Django's."""
    data = _compact_json.encode(claims).encode("latin-1")
    return _signed(data, zlib.compress(data), signing.b62_encode(int(time.time())), _mac(salt))


def sign_parts(
    *, key: str, upload_id: str, parts: Sequence[tuple[int, int | None]], expires_in: int
) -> list[SignedRequest]:
    """Part URLs, each bound by its token to the key, upload id, part number, size (None: any
    up to 5 GiB) and expiry, as sign_put binds them; the clock, expiry, URL prefix and HMAC key
    are taken once per batch. A part token is `signing.dumps(claims, salt=_PUT_SALT)`, not
    compressed: zlib spent more than signing the token on ~150 bytes of claims, for a URL ~30
    characters shorter. verify_put reads tokens compressed or not (signing.loads does), so the
    compressed part URLs handed out before keep working until they expire."""
    now = int(time.time())
    expires = now + expires_in
    expires_at = datetime.fromtimestamp(expires, UTC)
    head = f'{{"k":{_json_string(key)},"u":{_json_string(upload_id)},"n":'
    tail = f',"e":{expires}}}'
    timestamp = signing.b62_encode(now)
    mac = _mac(_PUT_SALT)
    prefix = _put_url_prefix()
    signed = []
    for number, size in parts:
        # json.dumps' compact JSON of {"k", "u", "n", "s", "e"} (sign_put's claims of a part).
        data = f'{head}{int(number)},"s":{"null" if size is None else int(size)}{tail}'.encode()
        token = _signed(data, None, timestamp, mac)
        url = put_url(token) if prefix is None else prefix + token
        signed.append(SignedRequest(url=url, expires_at=expires_at, headers={}))
    return signed


def _signed(data: bytes, compressed: bytes | None, timestamp: str, mac: "hmac.HMAC") -> str:
    """TimestampSigner.sign_object's token of `data`, compressed (when given and 2 bytes or
    more shorter, as signing.dumps decides) or not, with `timestamp` (base62 seconds) and `mac`
    (the salted HMAC before any input)."""
    if compressed is not None and len(compressed) < len(data) - 1:
        value = "." + signing.b64_encode(compressed).decode()
    else:
        value = signing.b64_encode(data).decode()
    value = f"{value}:{timestamp}"  # TimestampSigner.sign
    mac = mac.copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


def _mac(salt: str) -> "hmac.HMAC":
    """salted_hmac(salt + "signer", ..., settings.SECRET_KEY, algorithm="sha256") before any
    input, as Signer.signature makes it; one per salt and secret."""
    secret = settings.SECRET_KEY
    base = _macs.get((salt, secret))
    if base is None:
        derived = hashlib.sha256(force_bytes(salt + "signer") + force_bytes(secret)).digest()
        base = _macs[(salt, secret)] = hmac.new(derived, digestmod=hashlib.sha256)
    return base


# What signing.dumps writes (URL-safe base64, "." for compressed, ":" between the parts): no
# character of it is changed when reverse() quotes it into a path.
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]+")
_put_url_prefixes: dict[tuple[str, Any, str], str] = {}


def put_url(token: str) -> str:
    """`reverse("local-storage-put", args=[token])`, which is slower than signing the token: a
    batch of part URLs spent a third of its time there. The path before the token is reversed
    once per script prefix and URLconf; a token reverse() would quote goes through reverse()."""
    prefix = _put_url_prefix() if _TOKEN.fullmatch(token) else None
    return reverse("local-storage-put", args=[token]) if prefix is None else prefix + token


def _put_url_prefix() -> str | None:
    """The path put_url puts before a token of _TOKEN's characters (every token signed here);
    None if the route no longer ends with the token."""
    where = (get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    prefix = _put_url_prefixes.get(where)
    if prefix is None:
        sample = reverse("local-storage-put", args=["t"])
        if not sample.endswith("/t"):
            return None
        prefix = _put_url_prefixes[where] = sample[:-1]
    return prefix


def verify_put(token: str, content_length: int | None) -> dict[str, Any]:
    """Checks what S3 would check of a presigned request: signature, expiry, signed size; and
    the signed bound of a single PUT without a size, from the declared Content-Length, before a
    byte of the body is read (the body is then read up to Content-Length + 1 bytes at most)."""
    try:
        claims: dict[str, Any] = signing.loads(token, salt=_PUT_SALT)
    except signing.BadSignature:
        raise UrlInvalid("This upload URL is not valid.") from None
    if claims["e"] < time.time():
        raise UrlExpired("This upload URL has expired; ask the API for a fresh one.")
    if content_length is None:
        raise LengthRequired("Send a Content-Length header.")
    size = claims["s"]
    if size is None:
        # A part of an open multipart upload: up to S3's 5 GiB. A single PUT: up to the bound
        # it was signed with (the tenant's limit); one signed with neither size nor bound is
        # refused rather than taken unbounded.
        if "u" not in claims and "m" not in claims:
            raise UrlInvalid("This upload URL carries no size bound; ask the API for a fresh one.")
        bound = claims.get("m", MAX_SINGLE_PUT_BYTES)
        if content_length > bound:
            raise TooLarge(
                f"This URL takes at most {bound} bytes; the request declares {content_length}.",
                details={"maxBytes": bound, "contentLength": content_length},
            )
        if content_length < 1 and "u" not in claims:
            raise InvalidInput("The file is empty.", details={"minBytes": 1, "contentLength": content_length})
    if size is not None and content_length != size:
        raise InvalidInput(
            f"This URL is signed for exactly {size} bytes; the request declares {content_length}.",
            details={"expectedSize": size, "contentLength": content_length},
        )
    return claims


def sign_post(*, key: str, content_type: str, max_bytes: int, expires_in: int) -> SignedPost:
    """S3's form upload, signed by the portal: `policy` binds key, type, size range and expiry,
    as S3's policy document does; the form's own key and Content-Type must repeat them."""
    expires = int(time.time()) + expires_in
    policy = signing.dumps({"k": key, "c": content_type, "m": max_bytes, "e": expires}, salt=_POST_SALT)
    return SignedPost(
        url=reverse("local-storage-post"),
        fields={"key": key, "Content-Type": content_type, "policy": policy},
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def verify_post_policy(fields: Mapping[str, str]) -> PostPolicy:
    """Checks a form's fields as S3 checks a presigned POST before it reads the file: the
    policy's signature and expiry, and that the form's key and Content-Type are the signed
    ones. Field names are case-insensitive, as S3 reads them."""
    by_name = {name.lower(): value for name, value in fields.items()}
    try:
        claims: dict[str, Any] = signing.loads(by_name.get("policy", ""), salt=_POST_SALT)
    except signing.BadSignature:
        raise UrlInvalid("This upload form is not valid: its policy is missing or not signed here.") from None
    if claims["e"] < time.time():
        raise UrlExpired("This upload form has expired; ask for a fresh one.")
    if by_name.get("key") != claims["k"]:
        raise UrlInvalid("The form's key is not the one its policy signs.", details={"field": "key"})
    content_type = by_name.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != claims["c"]:
        raise UrlInvalid(f"This form is signed for Content-Type {claims['c']}.", details={"contentType": claims["c"]})
    return PostPolicy(key=claims["k"], content_type=claims["c"], max_bytes=claims["m"])


def sign_get(*, key: str, expires_in: int, content_type: str | None = None) -> SignedRequest:
    expires = int(time.time()) + expires_in
    token = signing.dumps({"k": key, "c": content_type, "e": expires}, salt=_GET_SALT, compress=True)
    return SignedRequest(
        url=reverse("local-storage-get", args=[token]),
        expires_at=datetime.fromtimestamp(expires, UTC),
        method="GET",
    )


def verify_get(token: str) -> GetGrant:
    """Signature and expiry, as S3 checks a presigned GET; the key is inside the signature, so
    no edit of the URL reaches another object."""
    try:
        claims: dict[str, Any] = signing.loads(token, salt=_GET_SALT)
    except signing.BadSignature:
        raise UrlInvalid("This download URL is not valid.") from None
    if claims["e"] < time.time():
        raise UrlExpired("This download URL has expired; reload the page for a fresh one.")
    return GetGrant(key=claims["k"], content_type=claims["c"])
