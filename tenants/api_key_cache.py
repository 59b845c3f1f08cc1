"""This process's memory of the API keys it has recently found live, so that a busy client's
requests do not each pay a query (and its compilation) for the same key.

The promise kept: a key revoked, or its tenant switched off, stops working within
`CACHE_SECONDS` (5 s) on every web process, with no message between processes. An entry is
trusted for that long from the moment its query *started* (a revocation committed while the
query ran is then still seen in time), and never longer. A revocation through `api_key_revoke`
also forgets the key in the process that made it, so there it stops working at once: the admin's
"revoked; it no longer works" is true on the next request the admin's own process serves. The
other processes (and a revocation made by another program, e.g. `manage.py revoke_api_key`) rely
on the expiry alone.

What is remembered is the key's and its tenant's column values, not model instances: each request
gets instances of its own, so no request can change what another sees. Only live keys are
remembered; an unknown or revoked secret is looked up every time, as before, so a key just created
works at once and a flood of wrong secrets cannot fill the memory."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.prepared_queries import model_from_row
from tenants.models import ApiKey, Tenant

# The most a revocation may take to reach every process. Lowering it costs a query per key per
# process that often; raising it breaks the promise above, so it may not exceed 5.
CACHE_SECONDS = 5.0
# Entries beyond this (that many distinct live keys in use within CACHE_SECONDS) start a sweep of
# the expired ones, and the memory is emptied if none are: a bound, never reached in practice.
MAX_ENTRIES = 10_000


@dataclass
class _Entry:
    key_values: tuple[Any, ...]
    tenant_values: tuple[Any, ...]
    trusted_until: float
    last_used_at: datetime | None  # this process's latest stamp, so it stamps once a minute at most


class ApiKeyCache:
    """Live keys by the SHA-256 of their secret. Thread-safe: reads take no lock, writes do."""

    def __init__(self, *, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= seconds <= 5:
            raise ValueError(f"an API key may be remembered for 0 to 5 seconds, not {seconds}")
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._key_fields = [f.attname for f in ApiKey._meta.concrete_fields]
        self._tenant_fields = [f.attname for f in Tenant._meta.concrete_fields]

    def now(self) -> float:
        """Read before the query whose result is then `put`: the entry's trust runs from here."""
        return self.clock()

    def get(self, hashed_key: str) -> ApiKey | None:
        """A fresh ApiKey (its tenant attached) as last found live, or None once that is more
        than `seconds` old."""
        entry = self._entries.get(hashed_key)
        if entry is None or self.clock() >= entry.trusted_until:
            return None
        key = model_from_row(ApiKey, entry.key_values)
        key.last_used_at = entry.last_used_at
        ApiKey.tenant.field.set_cached_value(key, model_from_row(Tenant, entry.tenant_values))
        return key

    def put(self, hashed_key: str, key: ApiKey, *, looked_up_at: float) -> None:
        """Remembers a key found live (its tenant loaded with it) by a query started at
        `looked_up_at` (from `now()`)."""
        if self.seconds <= 0:
            return
        entry = _Entry(
            key_values=tuple(getattr(key, name) for name in self._key_fields),
            tenant_values=tuple(getattr(key.tenant, name) for name in self._tenant_fields),
            trusted_until=looked_up_at + self.seconds,
            last_used_at=key.last_used_at,
        )
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES and hashed_key not in self._entries:
                self._sweep()
            self._entries[hashed_key] = entry

    def stamped(self, hashed_key: str, when: datetime) -> None:
        """This process wrote `when` as the key's last use."""
        entry = self._entries.get(hashed_key)
        if entry is not None:
            entry.last_used_at = when

    def forget(self, hashed_key: str) -> None:
        with self._lock:
            self._entries.pop(hashed_key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self) -> None:
        now = self.clock()
        for hashed_key in [h for h, e in self._entries.items() if now >= e.trusted_until]:
            del self._entries[hashed_key]
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()


api_key_cache = ApiKeyCache()
