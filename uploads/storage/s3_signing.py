"""S3 presigned URLs for UploadPart and the single create-once PutObject, signed here rather than
by botocore: each URL is byte for byte the one `client.generate_presigned_url` returns for the
same client, parameters and second, at a small fraction of its cost. botocore builds, serializes,
runs a dozen event handlers and re-parses a whole request per URL; a part URL only needs one
SHA-256 of the canonical request and one HMAC with a key that changes once a day.

Nothing about the endpoint is re-derived here. On first use the presigner asks boto3 itself for
probe URLs and learns from them the endpoint prefix (scheme, host, path-style bucket segment or
none, an endpoint's own path), the host S3 signs and the signing region; it then signs the same
probes itself, at the probe's own X-Amz-Date, and uses its own signing only if every probe comes
out identical. Any configuration this module does not reproduce (another signature version, an
S3 Express bucket, a botocore that quotes keys differently, an event handler that rewrites the
request) fails that check, and every URL is then boto3's, so a URL is never different from
boto3's: it is either the same string or boto3's own. Arguments outside what the probes covered
(a part number above 10,000, an expiry above 7 days, an unusual content type) go to boto3 too.
What the probes taught is dropped, and the probes run again, when an S3 response through the
client names another region for the bucket: botocore then signs for that region's host.
Two differences remain, both bounded: for up to CREDENTIALS_TTL_SECONDS after a rotation a URL is
signed with the previous credentials (still valid for minutes: s3_credentials), and an event handler
registered on the client after the probes ran is not seen.

The query parameters' order in the URL follows the order of the Params dict boto3 is given; the
fallback passes them in S3Storage's order (Bucket, Key, UploadId, PartNumber, ContentLength), and
the property test holds both to it."""

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from uploads.storage.s3_credentials import CREDENTIALS_TTL_SECONDS, FrozenCredentials
from uploads.storage.sigv4 import (
    ALGORITHM,
    MAX_EXPIRES_SECONDS,
    MAX_PART_NUMBER,
    SAFE_KEY,
    SAFE_QUERY,
    UNSIGNED_PAYLOAD,
    Endpoint,
    Scope,
    Unsupported,
    check_common,
    check_content_type,
    endpoint_of,
    hmac_sha256,
    put_object_params,
    query_value,
    request_signature,
    upload_part_params,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


_PROBE_KEY: Final = "probe/päth with spaces+~%.bin"  # quoting the probe key proves the quoting rule
_PROBE_UPLOAD_ID: Final = "probe+upload/id=~"


class S3Presigner:
    """Signs UploadPart and PutObject URLs for one bucket of one boto3 client.

    `clock` is the wall clock in seconds (tests freeze it with botocore's); the credentials are
    read from the client's own provider, so a rotation (instance role, SSO, assumed role) reaches
    the URLs within CREDENTIALS_TTL_SECONDS, as it reaches boto3's."""

    def __init__(
        self,
        client: "S3Client",
        bucket: str,
        *,
        clock: Callable[[], float] = time.time,
        credentials_ttl: float = CREDENTIALS_TTL_SECONDS,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.clock = clock
        self._lock = threading.Lock()
        self._credentials = FrozenCredentials(client, credentials_ttl)
        self._endpoint: Endpoint | None = None
        self._unsupported = False
        # Each cache is one tuple swapped whole: a reader sees either the old value or the new.
        self._timestamp: tuple[int, str, str] = (-1, "", "")
        self._scope: Scope | None = None
        self._quoted_key: tuple[str, str] = ("", "")
        self._quoted_upload_id: tuple[str, str] = ("", "")
        # botocore's region redirector remembers the region S3 names for a bucket in a redirect and
        # boto3's URLs follow it from then on (another host): what the probes taught is then stale.
        self._bucket_region: str | None = client.meta.region_name
        client.meta.events.register("needs-retry.s3", self._notice_bucket_region, unique_id=f"s3-presigner-{id(self)}")

    # --- the two URLs the portal signs ------------------------------------------------------------

    def upload_part(self, *, key: str, upload_id: str, part_number: int, size: int | None, expires_in: int) -> str:
        """UploadPart, bound to `size` bytes by a signed Content-Length when given."""
        try:
            endpoint = self._ready()
            check_common(key=key, size=size, expires_in=expires_in, allow_no_size=True)
            if type(part_number) is not int or not 1 <= part_number <= MAX_PART_NUMBER:
                raise Unsupported
            return self._sign_upload_part(
                endpoint, self._amz_date(), key, upload_id, part_number, size, expires_in, self._credentials.get()
            )
        except Unsupported:
            return self.client.generate_presigned_url(
                "upload_part",
                Params=upload_part_params(self.bucket, key, upload_id, part_number, size),
                ExpiresIn=expires_in,
            )

    def put_object(self, *, key: str, content_type: str, size: int, expires_in: int) -> str:
        """A single PUT of exactly `size` bytes of `content_type`, creating the object only if it
        does not exist (If-None-Match: *, signed)."""
        try:
            endpoint = self._ready()
            check_common(key=key, size=size, expires_in=expires_in, allow_no_size=False)
            check_content_type(content_type)
            return self._sign_put_object(
                endpoint, self._amz_date(), key, content_type, size, expires_in, self._credentials.get()
            )
        except Unsupported:
            return self.client.generate_presigned_url(
                "put_object", Params=put_object_params(self.bucket, key, content_type, size), ExpiresIn=expires_in
            )

    @property
    def active(self) -> bool:
        """Whether URLs are signed here (True) or by boto3 (False, after a failed probe)."""
        try:
            self._ready()
        except Unsupported:
            return False
        return True

    def _notice_bucket_region(self, response: Any = None, **_: Any) -> None:
        """Every S3 response through the client: one naming another region than the last sends
        the presigner back to boto3 for new probes."""
        if not response:
            return
        region = response[0].headers.get("x-amz-bucket-region")
        if region and region != self._bucket_region:
            self._bucket_region = region
            with self._lock:
                self._endpoint = None
                self._unsupported = False

    # --- signing ----------------------------------------------------------------------------------

    def _sign_upload_part(
        self,
        endpoint: Endpoint,
        amz_date: tuple[str, str],
        key: str,
        upload_id: str,
        part_number: int,
        size: int | None,
        expires_in: int,
        credentials: Any,
    ) -> str:
        path = self._quote_key(key)
        upload_param = self._quote_upload_id(upload_id)
        if size is None:
            signed_headers, header_block = "host", f"host:{endpoint.host}\n"
        else:
            signed_headers, header_block = "content-length;host", f"content-length:{size}\nhost:{endpoint.host}\n"
        # Canonical query: the encoded pairs sorted (upper-case X-Amz-* first, then partNumber, uploadId).
        auth_sorted, auth_in_url, signing = self._auth_params(
            endpoint, amz_date, expires_in, signed_headers, credentials
        )
        canonical = (
            f"PUT\n{endpoint.path_prefix}{path}\n{auth_sorted}&partNumber={part_number}&uploadId={upload_param}\n"
            f"{header_block}\n{signed_headers}\n{UNSIGNED_PAYLOAD}"
        )
        signature = request_signature(signing, amz_date[0], canonical)
        return (
            f"{endpoint.base}{path}?uploadId={upload_param}&partNumber={part_number}&{auth_in_url}"
            f"&X-Amz-Signature={signature}"
        )

    def _sign_put_object(
        self,
        endpoint: Endpoint,
        amz_date: tuple[str, str],
        key: str,
        content_type: str,
        size: int,
        expires_in: int,
        credentials: Any,
    ) -> str:
        path = self._quote_key(key)
        signed_headers = "content-length;content-type;host;if-none-match"
        auth_sorted, auth_in_url, signing = self._auth_params(
            endpoint, amz_date, expires_in, signed_headers, credentials
        )
        canonical = (
            f"PUT\n{endpoint.path_prefix}{path}\n{auth_sorted}\n"
            f"content-length:{size}\ncontent-type:{content_type}\nhost:{endpoint.host}\nif-none-match:*\n"
            f"\n{signed_headers}\n{UNSIGNED_PAYLOAD}"
        )
        signature = request_signature(signing, amz_date[0], canonical)
        return f"{endpoint.base}{path}?{auth_in_url}&X-Amz-Signature={signature}"

    def _auth_params(
        self, endpoint: Endpoint, amz_date: tuple[str, str], expires_in: int, signed_headers: str, credentials: Any
    ) -> tuple[str, str, Scope]:
        """The X-Amz-* parameters twice: sorted for the canonical request, and in botocore's
        order for the URL (Security-Token after SignedHeaders there, before it when sorted)."""
        timestamp, datestamp = amz_date
        scope = self._scope_for(endpoint, credentials, datestamp)
        signed_param = signed_headers.replace(";", "%3B")
        head = f"X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={scope.credential_param}&X-Amz-Date={timestamp}"
        head += f"&X-Amz-Expires={expires_in}"
        if scope.token is None:
            both = f"{head}&X-Amz-SignedHeaders={signed_param}"
            return both, both, scope
        return (
            f"{head}&X-Amz-Security-Token={scope.token_param}&X-Amz-SignedHeaders={signed_param}",
            f"{head}&X-Amz-SignedHeaders={signed_param}&X-Amz-Security-Token={scope.token_param}",
            scope,
        )

    def _scope_for(self, endpoint: Endpoint, credentials: Any, datestamp: str) -> Scope:
        scope = self._scope
        access_key, secret_key, token = credentials.access_key, credentials.secret_key, credentials.token
        if (
            scope is not None
            and scope.datestamp == datestamp
            and scope.region == endpoint.region
            and scope.access_key == access_key
            and scope.secret_key == secret_key
            and scope.token == token
        ):
            return scope
        scope_text = f"{datestamp}/{endpoint.region}/s3/aws4_request"
        try:
            credential_param = quote(f"{access_key}/{scope_text}", safe=SAFE_QUERY)
            token_param = "" if token is None else quote(token, safe=SAFE_QUERY)
            key = hmac_sha256(f"AWS4{secret_key}".encode(), datestamp)
        except UnicodeEncodeError as exc:
            raise Unsupported from exc
        for part in (endpoint.region, "s3", "aws4_request"):
            key = hmac_sha256(key, part)
        scope = Scope(
            access_key=access_key,
            secret_key=secret_key,
            token=token,
            datestamp=datestamp,
            region=endpoint.region,
            credential_param=credential_param,
            token_param=token_param,
            scope=scope_text,
            signing_key=key,
        )
        self._scope = scope
        return scope

    def _amz_date(self) -> tuple[str, str]:
        """(X-Amz-Date, its date), formatted once per second."""
        second = int(self.clock())
        cached = self._timestamp
        if cached[0] == second:
            return cached[1], cached[2]
        if second < 0:
            raise Unsupported
        timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        self._timestamp = (second, timestamp, timestamp[:8])
        return timestamp, timestamp[:8]

    def _quote_key(self, key: str) -> str:
        # A batch signs several parts of one key: the last key's quoting is kept.
        cached = self._quoted_key
        if cached[0] == key and key:
            return cached[1]
        try:
            quoted = quote(key, safe=SAFE_KEY)
        except UnicodeEncodeError as exc:  # a lone surrogate: boto3 fails its own way
            raise Unsupported from exc
        self._quoted_key = (key, quoted)
        return quoted

    def _quote_upload_id(self, upload_id: str) -> str:
        cached = self._quoted_upload_id
        if cached[0] == upload_id and upload_id:
            return cached[1]
        if type(upload_id) is not str or not upload_id:
            raise Unsupported
        try:
            quoted = quote(upload_id, safe=SAFE_QUERY)
        except UnicodeEncodeError as exc:
            raise Unsupported from exc
        self._quoted_upload_id = (upload_id, quoted)
        return quoted

    # --- learning the endpoint from boto3 -----------------------------------------------------------

    def _ready(self) -> Endpoint:
        endpoint = self._endpoint
        if endpoint is not None:
            return endpoint
        if self._unsupported:
            raise Unsupported
        with self._lock:
            if self._endpoint is None and not self._unsupported:
                try:
                    self._learn()
                except Exception as exc:  # no credentials yet, say: boto3 raises it in the fallback
                    raise Unsupported from exc
        if self._endpoint is None:
            raise Unsupported
        return self._endpoint

    def _learn(self) -> None:
        """Probes boto3, twice at most: credentials rotating between our read and boto3's is the
        one benign reason for a difference. Errors (no credentials, say) are not remembered: the
        call falls back to boto3, which raises them where it always did."""
        for _ in range(2):
            self._credentials.forget()
            credentials = self._credentials.get()
            reason = self._probe(credentials)
            if reason is None:
                return
            if reason != "credentials changed":
                break
        logger.warning("S3 URLs are signed by boto3, not s3_signing: %s", reason)
        self._unsupported = True

    def _probe(self, credentials: Any) -> str | None:
        """None when every probe URL signed here equals boto3's, else why not (never a URL: it
        would carry a session token)."""
        size, expires_in = 1234, 321
        reference = self.client.generate_presigned_url(
            "upload_part",
            Params=upload_part_params(self.bucket, _PROBE_KEY, _PROBE_UPLOAD_ID, 7, size),
            ExpiresIn=expires_in,
        )
        endpoint = endpoint_of(reference, _PROBE_KEY)
        if isinstance(endpoint, str):
            return endpoint
        # Each probe is checked at its own X-Amz-Date: a second may pass between them.
        probes: list[tuple[str, Callable[[tuple[str, str]], str]]] = [
            (
                reference,
                lambda d: self._sign_upload_part(
                    endpoint, d, _PROBE_KEY, _PROBE_UPLOAD_ID, 7, size, expires_in, credentials
                ),
            ),
            (
                self.client.generate_presigned_url(
                    "upload_part",
                    Params=upload_part_params(self.bucket, _PROBE_KEY, _PROBE_UPLOAD_ID, MAX_PART_NUMBER, None),
                    ExpiresIn=MAX_EXPIRES_SECONDS,
                ),
                lambda d: self._sign_upload_part(
                    endpoint, d, _PROBE_KEY, _PROBE_UPLOAD_ID, MAX_PART_NUMBER, None, MAX_EXPIRES_SECONDS, credentials
                ),
            ),
            (
                self.client.generate_presigned_url(
                    "put_object",
                    Params=put_object_params(self.bucket, _PROBE_KEY, "image/jpeg", size),
                    ExpiresIn=expires_in,
                ),
                lambda d: self._sign_put_object(endpoint, d, _PROBE_KEY, "image/jpeg", size, expires_in, credentials),
            ),
        ]
        for url, sign in probes:
            if not query_value(url, "X-Amz-Credential").startswith(f"{credentials.access_key}/"):
                return "credentials changed"
            stamp = query_value(url, "X-Amz-Date")
            if len(stamp) != 16 or sign((stamp, stamp[:8])) != url:
                return "a probe URL signed here differs from boto3's"
        self._endpoint = endpoint
        return None
