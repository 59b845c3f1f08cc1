"""Rate limits on the v1 API: one bucket per API key (or browser session), one per tenant, counted
in the shared cache; the request over a limit is a 429 with Retry-After, and nobody else's
bucket moves."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from portal import throttling
from portal.rates import Rate, env_rate, parse_rate
from tenants.models import ApiKey, Tenant
from tests.api.openapi import assert_matches_schema, openapi_document
from tests.api.test_sessions import open_link, post
from tests.conftest import client_for
from tests.helpers import UNKNOWN_TRACKING_ID, assert_error
from tests.integration.live import require_service

pytestmark = [pytest.mark.django_db, pytest.mark.once]  # counted in the cache, whatever the database

STATUS = f"/v1/catalog/status/{UNKNOWN_TRACKING_ID}"  # any authenticated request will do: 404 until limited
REDIS_URL = "redis://127.0.0.1:6379/15"
REPO = Path(__file__).resolve().parents[2]


NOW = 1_800_000_030.0  # half a minute into a one-minute window: no test straddles a window's end


@pytest.fixture(autouse=True)
def mid_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixed clock, and no test inherits another's 'cache is down' pause."""
    monkeypatch.setattr(throttling, "_clock", lambda: NOW)
    throttling._cache_down_until = 0.0
    yield
    throttling._cache_down_until = 0.0


def statuses(client: APIClient, count: int) -> list[int]:
    return [client.get(STATUS).status_code for _ in range(count)]


def assert_throttled(response: Any, *, scope: str, rate: str) -> int:
    error = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert retry_after == 30  # the window's end (see NOW), in whole seconds
    assert error["details"] == {"retryAfter": retry_after, "limits": [{"scope": scope, "rate": rate}]}
    return retry_after


def test_request_over_the_keys_rate_is_429_with_retry_after(api: APIClient, settings: Any) -> None:
    settings.API_RATE_PER_KEY = "3/min"
    assert statuses(api, 3) == [404, 404, 404]
    assert_throttled(api.get(STATUS), scope="key", rate="3/min")
    # Every endpoint shares the key's bucket, whatever it would have answered.
    assert_throttled(api.post("/v1/catalog/uploads", {}), scope="key", rate="3/min")


def test_another_key_and_another_tenant_keep_their_own_buckets(
    api: APIClient, tenant: Tenant, other_api: APIClient, settings: Any
) -> None:
    settings.API_RATE_PER_KEY = "2/min"
    assert statuses(api, 3) == [404, 404, 429]
    assert statuses(client_for(tenant), 2) == [404, 404]
    assert statuses(other_api, 2) == [404, 404]


def test_tenant_rate_counts_every_key_of_the_tenant_and_no_other_tenant(
    api: APIClient, tenant: Tenant, other_api: APIClient, settings: Any
) -> None:
    settings.API_RATE_PER_TENANT = "4/min"
    second = client_for(tenant)
    assert statuses(api, 2) + statuses(second, 2) == [404] * 4
    assert_throttled(client_for(tenant).get(STATUS), scope="tenant", rate="4/min")
    assert statuses(other_api, 4) == [404] * 4


def test_pipeline_key_has_its_own_bucket_on_the_events_endpoint(
    api: APIClient, pipeline: APIClient, settings: Any
) -> None:
    settings.API_RATE_PER_KEY = "2/min"
    events = f"{STATUS}/events"
    assert [pipeline.post(events, {}).status_code for _ in range(2)] == [400, 400]
    assert_throttled(pipeline.post(events, {}), scope="key", rate="2/min")
    assert statuses(api, 2) == [404, 404]  # the tenant's client key is untouched


def test_upload_link_session_is_limited_per_session(tenant: Tenant, api: APIClient, settings: Any) -> None:
    settings.API_RATE_PER_KEY = "2/min"
    link = open_link(tenant)
    body = {"artisanId": "art_1", "contentType": "text/plain", "fileSize": 10}
    assert [post(link, "/v1/catalog/upload/initiate", body).status_code for _ in range(2)] == [415, 415]
    assert_throttled(post(link, "/v1/catalog/upload/initiate", body), scope="key", rate="2/min")
    assert post(open_link(tenant), "/v1/catalog/upload/initiate", body).status_code == 415  # another link
    assert statuses(api, 1) == [404]


def test_unauthenticated_requests_are_401_and_spend_no_tenants_budget(api: APIClient, settings: Any) -> None:
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_TENANT = "2/min"
    anonymous, wrong = APIClient(), APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert statuses(anonymous, 3) + statuses(wrong, 3) == [401] * 6
    assert statuses(api, 2) == [404, 404]


def test_rates_off_count_nothing(api: APIClient, settings: Any) -> None:
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_TENANT = "off"
    assert statuses(api, 5) == [404] * 5


def test_window_ends_where_retry_after_says_and_the_next_window_starts_afresh(tenant: Tenant) -> None:
    rate = Rate(count=2, seconds=60)
    start = 1_800_000_000.0  # a window boundary (a multiple of 60)
    hits = [throttling.rate_hit("test:w", rate, now=start + t) for t in (0, 10, 20)]
    assert [(h.count, h.allowed) for h in hits if h] == [(1, True), (2, True), (3, False)]
    assert hits[2] is not None and hits[2].retry_after == 40
    after = throttling.rate_hit("test:w", rate, now=start + 60)
    assert after is not None and (after.count, after.allowed) == (1, True)


def test_unavailable_cache_lets_requests_through_and_is_logged(
    api: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings.API_RATE_PER_KEY = "1/min"
    calls: list[str] = []

    def refuse(key: str, *args: Any, **kwargs: Any) -> int:
        calls.append(key)
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(throttling.cache, "incr", refuse)
    assert statuses(api, 3) == [404] * 3
    assert len(calls) == 1  # then this process stops asking for a while
    assert "Rate limits are not enforced" in caplog.text


def test_throttled_response_and_every_operation_document_429(api: APIClient, settings: Any) -> None:
    settings.API_RATE_PER_KEY = "1/min"
    api.get(STATUS)
    limited = api.get(STATUS)
    assert limited.status_code == 429
    assert_matches_schema(limited, "/v1/catalog/status/{tracking_id}", "get")
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            documented = operation["responses"].get("429")
            assert documented and "Retry-After" in documented["headers"], f"{method} {path}"


def test_rate_strings() -> None:
    assert parse_rate("1200/min") == Rate(1200, 60)
    assert parse_rate("20/s") == Rate(20, 1)
    assert parse_rate("100/10s") == Rate(100, 10)
    assert parse_rate("5000/hour") == parse_rate("5000/h") == Rate(5000, 3600)
    assert parse_rate("50000/day") == Rate(50000, 86400)
    assert parse_rate("off") is parse_rate("") is None
    for bad in ("1200", "0/min", "10/fortnight", "-1/s", "ten/min", "10/0s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_a_bad_rate_in_the_environment_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_RATE_PER_KEY", "1200 per minute")
    with pytest.raises(ImproperlyConfigured, match="API_RATE_PER_KEY"):
        env_rate("API_RATE_PER_KEY", "1200/min")


def test_two_processes_on_redis_share_one_count(api: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another web process (here: a child process configured by CACHE_URL, as production is)
    spends the key's budget; this process's next request with that key is then refused."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        reachable = True
    except redis.ConnectionError:
        reachable = False
    require_service(reachable, "Redis is not running on 127.0.0.1:6379")
    settings.API_RATE_PER_KEY = "5/min"
    key = ApiKey.objects.get()
    prefix = f"test-{uuid.uuid4().hex}"
    child = f"""
import django
django.setup()
from django.conf import settings
from portal.rates import parse_rate
from portal.throttling import rate_hit
assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), settings.CACHES
print([rate_hit("key:api:{key.pk}", parse_rate("5/min"), now={NOW}).count for _ in range(5)])
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "CACHE_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": prefix,
        "PORTAL_DATA_DIR": str(settings.UPLOADS_LOCAL_ROOT.parent / "child"),
        "SECRET_KEY": "child-process-secret",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", child], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 3, 4, 5]"

    shared = RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    monkeypatch.setattr(throttling, "cache", shared)
    try:
        assert_throttled(api.get(STATUS), scope="key", rate="5/min")
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.scan_iter(f"{prefix}:*"):
            client.delete(name)
