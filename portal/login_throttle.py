"""Staff sign-in throttle: after ADMIN_LOGIN_MAX_FAILURES failed sign-ins for one username, or
ADMIN_LOGIN_MAX_FAILURES_PER_IP from one client address, sign-in is refused for
ADMIN_LOGIN_LOCKOUT_SECONDS, whatever the password, so a password cannot be guessed at speed
(per username, however many hosts try) nor usernames sprayed from one host. A successful sign-in
clears its username's failures.

Counters live in Django's cache: the shared Redis of CACHE_URL in production, so every web
process counts together; local memory in the embedded mode's single web process. If the cache
does not answer, sign-in goes on unthrottled (logged): staff locked out of the admin by a cache
outage would be worse than a throttle missing for its duration.

Trade-off: anyone who knows a staff username can keep that account locked by failing on
purpose; the cool-off is short and the lock names no account state, so staff wait it out or an
operator clears it (`manage.py shell`: cache.clear())."""

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)
_PREFIX = "login-throttle"


def client_address(request: HttpRequest | None) -> str:
    """The client's address: behind the TLS proxy (PORTAL_BEHIND_TLS_PROXY), the address the
    proxy appended last to X-Forwarded-For, since earlier entries are whatever the client sent;
    otherwise the connection's peer."""
    if request is None:
        return ""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    return str(request.META.get("REMOTE_ADDR", ""))


def _subjects(username: str, address: str) -> list[tuple[str, int]]:
    """(cache key stem, failure limit) for the username and the client address."""
    subjects = []
    if username.strip():
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
        subjects.append((f"{_PREFIX}:user:{digest}", settings.ADMIN_LOGIN_MAX_FAILURES))
    if address:
        digest = hashlib.sha256(address.encode()).hexdigest()
        subjects.append((f"{_PREFIX}:ip:{digest}", settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP))
    return subjects


def login_locked_for(*, username: str, address: str) -> int | None:
    """Seconds until sign-in is allowed again for this username or address; None: allowed now."""
    try:
        until = [cache.get(f"{stem}:locked") for stem, _ in _subjects(username, address)]
    except Exception:
        logger.warning("Sign-in throttle: the cache did not answer; sign-in is not throttled.", exc_info=True)
        return None
    now = time.time()
    left = [value - now for value in until if value is not None and value > now]
    return math.ceil(max(left)) if left else None


def login_failed(*, username: str, address: str) -> None:
    """Counts one failed sign-in; the one that reaches a limit starts the cool-off."""
    lockout = settings.ADMIN_LOGIN_LOCKOUT_SECONDS
    try:
        for stem, limit in _subjects(username, address):
            # Failures count within one cool-off period of the first of them.
            cache.add(f"{stem}:failures", 0, timeout=lockout)
            try:
                failures = cache.incr(f"{stem}:failures")
            except ValueError:  # expired between add and incr
                cache.set(f"{stem}:failures", 1, timeout=lockout)
                failures = 1
            if failures >= limit:
                cache.set(f"{stem}:locked", time.time() + lockout, timeout=lockout)
                cache.delete(f"{stem}:failures")
                logger.warning("Sign-in locked for %s s after %s failures (%s).", lockout, failures, stem.split(":")[1])
    except Exception:
        logger.warning("Sign-in throttle: the cache did not answer; the failure is not counted.", exc_info=True)


def login_succeeded(*, username: str) -> None:
    """A correct password for an account allowed in clears that username's failures."""
    try:
        for stem, _ in _subjects(username, ""):
            cache.delete(f"{stem}:failures")
    except Exception:
        logger.warning("Sign-in throttle: the cache did not answer.", exc_info=True)
