"""Rate limits on the v1 API: one bucket per API key (or browser session) and one per tenant,
counted in the shared cache (Redis in production, so every web process adds to one count; this
process's memory in the embedded mode). A request over either limit is a 429 with Retry-After.

Each bucket is a fixed window counted with one atomic increment (Redis INCR), not DRF's list of
timestamps per bucket, which reads and writes a list as long as the limit on every request and
loses counts when two processes update it at once. The price: across a window's edge a client
may send up to twice its rate. These limits stop runaway clients and abuse; they are not billing.

Rates are read from settings on every request (DRF's own throttles read them once, at import),
so an operator's change takes effect on restart and a test can lower them. An unavailable cache
lets requests through, logged: a rate limit must not turn a Redis restart into an API outage."""

import functools
import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from portal.rates import Rate, parse_rate
from tenants.auth import SessionGrant
from tenants.models import ApiKey

logger = logging.getLogger(__name__)

# A window's counter outlives the window a little, so a request at its very end still finds it.
_GRACE_SECONDS = 5
# After the cache fails, this process stops asking it for a while instead of waiting on it per request.
CACHE_RETRY_SECONDS = 5.0
_cache_down_until = 0.0
_clock = time.time  # the wall clock: windows must end at the same moment in every process
REFUSALS_ATTR = "rate_limit_refusals"


@dataclass(frozen=True)
class Hit:
    count: int  # requests in this window, this one included
    allowed: bool
    retry_after: float  # seconds until the window ends


def rate_hit(bucket: str, rate: Rate, *, now: float | None = None) -> Hit | None:
    """Counts one request against `bucket` and says whether it is within `rate`. Windows are
    aligned to the epoch, so every process agrees where one ends. None: the cache is unavailable,
    and the request is let through."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    now = _clock() if now is None else now
    window = int(now // rate.seconds)
    key = f"rate:{bucket}:{rate.seconds}:{window}"
    try:
        count = _increment(key, timeout=rate.seconds + _GRACE_SECONDS)
    except (RedisError, OSError) as exc:
        _cache_down_until = time.monotonic() + CACHE_RETRY_SECONDS
        logger.warning("Rate limits are not enforced for %ss: the cache is unavailable (%s)", CACHE_RETRY_SECONDS, exc)
        return None
    return Hit(count=count, allowed=count <= rate.count, retry_after=(window + 1) * rate.seconds - now)


def _increment(key: str, *, timeout: int) -> int:
    try:
        return int(cache.incr(key))
    except ValueError:  # the window's first request (or a racing one: add() keeps the winner's)
        cache.add(key, 0, timeout)
        return int(cache.incr(key))


@functools.lru_cache(maxsize=32)
def _rate(text: str) -> Rate | None:
    """parse_rate, once per rate string: it runs twice on every request."""
    return parse_rate(text)


class CacheRateThrottle(BaseThrottle, ABC):
    """A DRF throttle over `rate_hit`: `scope` names the bucket kind, `setting` its rate."""

    scope: ClassVar[str]
    setting: ClassVar[str]

    def __init__(self) -> None:
        self.retry_after: float | None = None

    @abstractmethod
    def bucket(self, request: Request) -> str | None:
        """The bucket this request counts against; None: not counted here."""

    def allow_request(self, request: Request, view: Any) -> bool:
        rate_text = getattr(settings, self.setting, "")
        rate = _rate(rate_text)
        bucket = self.bucket(request)
        if rate is None or bucket is None:
            return True
        hit = rate_hit(f"{self.scope}:{bucket}", rate)
        if hit is None or hit.allowed:
            return True
        self.retry_after = hit.retry_after
        # Read by portal.exceptions, which says which limit the client reached.
        refusals = getattr(request, REFUSALS_ATTR, None) or []
        refusals.append({"scope": self.scope, "rate": rate_text})
        setattr(request, REFUSALS_ATTR, refusals)
        return False

    def wait(self) -> float | None:
        return max(1, math.ceil(self.retry_after)) if self.retry_after is not None else None


class KeyRateThrottle(CacheRateThrottle):
    """One bucket per API key, upload link session or staff member (per tenant): one runaway
    client or leaked key cannot spend its tenant's whole budget."""

    scope = "key"
    setting = "API_RATE_PER_KEY"

    def bucket(self, request: Request) -> str | None:
        auth = request.auth
        if isinstance(auth, ApiKey):
            return f"api:{auth.pk}"
        if isinstance(auth, SessionGrant):
            return f"{auth.tenant.id}:{auth.actor}"
        return None


class TenantRateThrottle(CacheRateThrottle):
    """One bucket per tenant, over all its keys and sessions: one tenant cannot crowd out the others."""

    scope = "tenant"
    setting = "API_RATE_PER_TENANT"

    def bucket(self, request: Request) -> str | None:
        tenant = getattr(request, "tenant", None)
        return str(tenant.id) if tenant is not None else None


def rate_limit_refusals(request: Any) -> list[dict[str, str]]:
    """The limits this request was refused by (scope and rate), for the 429's details."""
    refusals = getattr(request, REFUSALS_ATTR, None)
    return list(refusals) if isinstance(refusals, list) else []


def document_rate_limits(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation of a throttled view documents its 429
    and the Retry-After header."""
    throttled = {
        (path, method.lower())
        for path, _regex, method, view in generator.endpoints
        if getattr(getattr(view, "cls", None), "throttle_classes", None)
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if (path, method) not in throttled:
                continue
            operation.setdefault("responses", {})["429"] = {
                "description": "Too many requests: the API key's or the tenant's rate limit is reached. "
                "Wait Retry-After seconds (also `details.retryAfter`); `details.limits` names the limit.",
                "headers": {
                    "Retry-After": {
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "Seconds until the limit's window ends.",
                    }
                },
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}},
            }
    return result
