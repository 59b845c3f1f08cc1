"""The credentials the S3 presigner signs with: the boto3 client's own, frozen, and re-read from
its provider at most once per TTL, so a rotation (instance role, SSO, assumed role) reaches the
URLs within that time, as it reaches boto3's.

botocore refreshes role credentials 15 minutes (advisory) or 10 minutes (mandatory) before they
expire, so a copy at most CREDENTIALS_TTL_SECONDS old is valid for minutes longer than boto3's
own copy would be at the same instant: a URL signed with it lives exactly as long. Reading them
per URL costs ~10 µs for refreshable credentials (a timezone-aware clock read), as much as all
the rest of the signing."""

import time
from typing import TYPE_CHECKING, Any, Final

from uploads.storage.sigv4 import Unsupported

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CREDENTIALS_TTL_SECONDS: Final = 1.0


class FrozenCredentials:
    """One generation of the client's access key, secret and token, shared by the URLs signed
    within `ttl` seconds. The cache is one tuple swapped whole: a reader sees the old or the new."""

    def __init__(self, client: "S3Client", ttl: float = CREDENTIALS_TTL_SECONDS) -> None:
        self.client = client
        self.ttl = ttl
        self._cached: tuple[float, Any] = (float("-inf"), None)

    def get(self) -> Any:
        """Raises Unsupported where the client has none or of a kind not signed here: the caller
        then lets boto3 sign, which raises NoCredentialsError itself."""
        deadline, frozen = self._cached
        now = time.monotonic()
        if now < deadline:
            return frozen
        provider = getattr(getattr(self.client, "_request_signer", None), "_credentials", None)
        if provider is None:
            raise Unsupported
        frozen = provider.get_frozen_credentials()
        if not isinstance(frozen.access_key, str) or not isinstance(frozen.secret_key, str):
            raise Unsupported
        if frozen.token is not None and not isinstance(frozen.token, str):
            raise Unsupported
        self._cached = (now + self.ttl, frozen)
        return frozen

    def forget(self) -> None:
        """The next get() reads the provider again."""
        self._cached = (float("-inf"), None)
