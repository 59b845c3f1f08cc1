"""API keys are remembered by each web process for up to 5 s (tenants/api_key_cache.py): a key
revoked anywhere stops working within that time on every process, and at once in the process
that revoked it. The clock is the cache's own, replaced here, so no test sleeps."""

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.api_key_cache import CACHE_SECONDS, MAX_ENTRIES, ApiKeyCache, api_key_cache
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import api_key_authenticate, api_key_create, api_key_revoke, hash_api_key
from tests.helpers import staff_client

pytestmark = pytest.mark.django_db
STATUS = "/v1/catalog/status/trk_000000000000000000000000"  # a 404 once authenticated, a 401 if not


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(api_key_cache, "clock", fake)
    api_key_cache.clear()
    yield fake
    api_key_cache.clear()


def with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def revoke_elsewhere(key: ApiKey) -> None:
    """What another web process, the admin of another process or `manage.py revoke_api_key` run
    elsewhere do: the row changes, this process's memory is not told."""
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_has_passed(tenant: Tenant, clock: Clock) -> None:
    key, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    revoke_elsewhere(key)
    clock.advance(CACHE_SECONDS - 0.01)
    assert client.get(STATUS).status_code == 404  # still remembered as live: the promised window
    clock.advance(0.01)
    response = client.get(STATUS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_the_window_runs_from_the_lookup_not_from_the_last_use(tenant: Tenant, clock: Clock) -> None:
    key, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    for _ in range(4):  # busy use does not extend the trust
        clock.advance(1)
        assert client.get(STATUS).status_code == 404
    revoke_elsewhere(key)
    clock.advance(1)
    assert client.get(STATUS).status_code == 401


def test_a_key_revoked_through_the_service_is_refused_at_once_by_this_process(tenant: Tenant, clock: Clock) -> None:
    key, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    api_key_revoke(api_key=key)
    assert client.get(STATUS).status_code == 401  # no time has passed


def test_a_key_revoked_by_the_command_is_refused_at_once_by_this_process(tenant: Tenant, clock: Clock) -> None:
    key, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    out = StringIO()
    call_command("revoke_api_key", key.prefix, stdout=out)
    assert f"Revoked API key {key.prefix}" in out.getvalue()
    assert client.get(STATUS).status_code == 401
    out = StringIO()
    call_command("revoke_api_key", f"{key.prefix}…", stdout=out)  # as the admin shows it
    assert "already revoked" in out.getvalue()


def test_the_command_refuses_an_unknown_prefix(tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "cup_nothing", stdout=StringIO())


def test_an_operator_revoking_in_the_admin_is_obeyed_at_once_by_the_admins_process(
    tenant: Tenant, clock: Clock
) -> None:
    key, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    admin = staff_client(tenant, Membership.Role.OPERATOR)
    admin.post(f"/admin/tenants/apikey/{key.pk}/revoke/")
    assert client.get(STATUS).status_code == 401


def test_a_tenant_switched_off_is_refused_within_the_cache_time(tenant: Tenant, clock: Clock) -> None:
    _, raw = api_key_create(tenant=tenant)
    client = with_key(raw)
    assert client.get(STATUS).status_code == 404
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    clock.advance(CACHE_SECONDS)
    assert client.get(STATUS).status_code == 401


def test_a_remembered_key_costs_no_query(tenant: Tenant, clock: Clock) -> None:
    _, raw = api_key_create(tenant=tenant)
    assert api_key_authenticate(raw_key=raw) is not None  # looked up, remembered, last use stamped
    with CaptureQueriesContext(connection) as queries:
        key = api_key_authenticate(raw_key=raw)
    assert key is not None and key.tenant.pk == tenant.pk
    assert queries.captured_queries == []
    clock.advance(CACHE_SECONDS)
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(raw_key=raw) is not None
    assert len(queries.captured_queries) == 1  # looked up again; the last use is still fresh


def test_the_last_use_is_written_at_most_once_a_minute(tenant: Tenant, clock: Clock, monkeypatch: Any) -> None:
    key, raw = api_key_create(tenant=tenant)
    assert api_key_authenticate(raw_key=raw) is not None
    stamped = ApiKey.objects.get(pk=key.pk).last_used_at
    assert stamped is not None
    later = stamped + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(raw_key=raw) is not None
        assert api_key_authenticate(raw_key=raw) is not None
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert ApiKey.objects.get(pk=key.pk).last_used_at == later


def test_unknown_and_revoked_secrets_are_not_remembered(tenant: Tenant, clock: Clock) -> None:
    key, raw = api_key_create(tenant=tenant)
    api_key_revoke(api_key=key)
    for secret in (raw, "cup_not-a-key"):
        assert api_key_authenticate(raw_key=secret) is None
    assert len(api_key_cache) == 0


def test_a_key_created_after_a_wrong_guess_works_at_once(tenant: Tenant, clock: Clock) -> None:
    assert with_key("cup_not-yet").get(STATUS).status_code == 401
    _, raw = api_key_create(tenant=tenant)
    assert with_key(raw).get(STATUS).status_code == 404


def test_each_request_gets_its_own_instances(tenant: Tenant, clock: Clock) -> None:
    _, raw = api_key_create(tenant=tenant)
    first = api_key_authenticate(raw_key=raw)
    assert first is not None
    first.role = ApiKey.Role.PIPELINE
    first.tenant.is_active = False
    second = api_key_authenticate(raw_key=raw)
    assert second is not None and second is not first and second.tenant is not first.tenant
    assert (second.role, second.tenant.is_active) == (ApiKey.Role.CLIENT, True)
    assert second.tenant_id == tenant.pk and not second._state.adding


def test_another_tenants_key_stays_another_tenants(tenant: Tenant, other_tenant: Tenant, clock: Clock) -> None:
    _, mine = api_key_create(tenant=tenant)
    _, theirs = api_key_create(tenant=other_tenant)
    for _ in range(2):  # looked up, then remembered
        assert api_key_authenticate(raw_key=mine).tenant.pk == tenant.pk  # type: ignore[union-attr]
        assert api_key_authenticate(raw_key=theirs).tenant.pk == other_tenant.pk  # type: ignore[union-attr]


def test_a_cache_may_not_trust_a_key_for_longer_than_five_seconds() -> None:
    with pytest.raises(ValueError):
        ApiKeyCache(seconds=5.5)
    assert ApiKeyCache().seconds == CACHE_SECONDS <= 5


def test_a_revocation_committed_while_a_lookup_ran_is_seen_in_time(tenant: Tenant) -> None:
    """The trust runs from the moment the query started: a revocation that query could not see
    is still obeyed within CACHE_SECONDS of itself."""
    clock = Clock()
    cache = ApiKeyCache(clock=clock)
    key, raw = api_key_create(tenant=tenant)
    looked_up_at = cache.now()
    clock.advance(2)  # the query, slow; the revocation lands meanwhile
    cache.put(hash_api_key(raw), key, looked_up_at=looked_up_at)
    clock.advance(CACHE_SECONDS - 2)
    assert cache.get(hash_api_key(raw)) is None


def test_the_memory_is_bounded(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenants.api_key_cache.MAX_ENTRIES", 3)
    clock = Clock()
    cache = ApiKeyCache(clock=clock)
    key, _ = api_key_create(tenant=tenant)
    for n in range(3):
        cache.put(f"h{n}", key, looked_up_at=clock())
    clock.advance(CACHE_SECONDS)
    cache.put("h3", key, looked_up_at=clock())  # full: the expired entries go first
    assert len(cache) == 1
    for n in range(4, 7):
        cache.put(f"h{n}", key, looked_up_at=clock())  # full of live ones: emptied
    assert len(cache) <= 3
    assert MAX_ENTRIES >= 1000  # the real bound is far above any fleet of clients
