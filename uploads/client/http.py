"""One pooled HTTP session for the API and for storage, and the retry policy both follow.

API calls are retried here (they are all safe to repeat, see `Transport.api`); a PUT of bytes
to storage is tried once here and retried by the transfer, which must re-sign an expired URL
and re-check the ETag between attempts."""

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from xml.etree import ElementTree

import requests
from requests.adapters import HTTPAdapter

from uploads.client.errors import NETWORK, UNEXPECTED_RESPONSE, CatalogError

# urllib3 sends a file-like body in blocks of this many bytes; its default (16 KiB) costs a
# system call and a Python loop turn per 16 KiB, which shows against boto3 at hundreds of MB/s.
SEND_BLOCK = 1024 * 1024
CONNECT_TIMEOUT = 10.0
USER_AGENT = "catalog-upload-client/1"


class Body(Protocol):
    """A request body read in blocks (a part of a file), with its exact length known."""

    def read(self, size: int = -1, /) -> bytes: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (sleep a random time up to base·2^attempt, capped):
    clients that failed together do not come back together. A server's Retry-After is a floor."""

    retries: int = 8
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311 (jitter, not a secret)
        if retry_after is not None:
            return min(max(retry_after, backoff), 300.0)
        return backoff


class _BlockAdapter(HTTPAdapter):
    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("blocksize", SEND_BLOCK)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


class Transport:
    """The API's base URL and key, one connection pool sized for the transfer's workers, and
    the timeouts. The key goes only to the API, never to a storage URL."""

    def __init__(self, base_url: str, api_key: str, *, pool_size: int, timeout: float, policy: RetryPolicy) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self._auth = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = _BlockAdapter(pool_connections=4, pool_maxsize=pool_size + 2, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def api(self, method: str, path: str, body: Mapping[str, Any] | None = None, *, retry: bool = True) -> Any:
        """A v1 call, retried on no answer, 408, 429 and 5xx. Every call the client makes is
        safe to repeat except creating an upload, whose lost answer leaves an unused upload
        behind for the portal's expiry sweep: a small cost against failing the whole file."""
        url = f"{self.base_url}/v1{path}"
        attempts = self.policy.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, json=body, headers=self._auth, timeout=self.timeout)
            except requests.RequestException as exc:
                error = CatalogError(f"No answer from {self.base_url}: {exc}", code=NETWORK)
                retry_after = None
            else:
                if response.status_code < 400:
                    return _json(response)
                error = api_error(response)
                retry_after = retry_after_seconds(response)
            if not error.retryable or attempt == attempts - 1:
                raise error
            time.sleep(self.policy.delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def put(self, url: str, headers: Mapping[str, str], body: Body) -> requests.Response:
        """One PUT of bytes to a presigned URL; the caller judges the answer."""
        return self.session.put(url, data=body, headers=dict(headers), timeout=self.timeout)

    def close(self) -> None:
        self.session.close()


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CatalogError(
            f"{response.request.method} {response.url} answered {response.status_code} without JSON.",
            code=UNEXPECTED_RESPONSE,
            status=response.status_code,
        ) from None


def api_error(response: requests.Response) -> CatalogError:
    """The portal's `{"error": {code, message, details}}`, or a stand-in for a proxy's page."""
    try:
        error = response.json()["error"]
        return CatalogError(
            str(error["message"]), code=str(error["code"]), status=response.status_code, details=error.get("details")
        )
    except (ValueError, KeyError, TypeError):
        return CatalogError(
            f"The server answered {response.status_code} {response.reason}.",
            code=f"http_{response.status_code}",
            status=response.status_code,
        )


def storage_error(response: requests.Response) -> CatalogError:
    """S3 answers XML (`<Error><Code>`), the portal's local storage JSON: one shape for both."""
    if response.content.lstrip().startswith(b"<"):
        try:
            root = ElementTree.fromstring(response.content)  # noqa: S314 (storage's own error document)
            code = root.findtext("Code") or f"http_{response.status_code}"
            message = root.findtext("Message") or response.reason
            return CatalogError(f"Storage refused the bytes: {message}", code=code, status=response.status_code)
        except ElementTree.ParseError:
            pass
    return api_error(response)


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After in seconds or as an HTTP date; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
