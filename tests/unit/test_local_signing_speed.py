"""The local backend signs part URLs without signing.dumps and reverse() (uploads/storage/
local_signing.py), for speed; the URLs must stay exactly what those two made, so that nothing a
client, a test or the verifying side sees changes."""

import time
from types import ModuleType
from typing import Any

import pytest
from django.core import signing
from django.urls import include, path, reverse, set_script_prefix
from hypothesis import given
from hypothesis import strategies as st

from uploads.storage.local_signing import put_url, sign_put, signed_token, verify_put

SALT = "uploads.storage.local.put"

claims = st.fixed_dictionaries(
    {
        "k": st.text(min_size=1, max_size=300),
        "u": st.text(alphabet="0123456789abcdef-", max_size=40),
        "n": st.integers(min_value=1, max_value=10_000),
        "s": st.one_of(st.none(), st.integers(min_value=0, max_value=5 * 1024**3)),
        "e": st.integers(min_value=0, max_value=2**40),
    }
)


@given(claims=claims, now=st.floats(min_value=0, max_value=2**33), short=st.booleans())
def test_a_token_is_signing_dumps_own(claims: dict[str, Any], now: float, short: bool) -> None:
    if short:  # too short to compress: the other branch of signing.dumps
        claims = {"e": claims["e"]}
    real_time = time.time
    time.time = lambda: now  # both read the clock through the module
    try:
        mine = signed_token(claims, salt=SALT)
        theirs = signing.dumps(claims, salt=SALT, compress=True)
    finally:
        time.time = real_time
    assert mine == theirs
    assert signing.loads(mine, salt=SALT) == claims


odd_claims = st.dictionaries(
    st.sampled_from(["k", "u", "n", "s", "e", "c", "m"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    max_size=7,
)


@given(claims=st.one_of(odd_claims, claims.flatmap(lambda c: st.permutations(list(c.items())).map(dict))))
def test_a_token_of_any_claims_in_any_order_is_signing_dumps_own(claims: dict[str, Any]) -> None:
    real_time = time.time
    time.time = lambda: 1_790_000_000.5
    try:
        assert signed_token(claims, salt=SALT) == signing.dumps(claims, salt=SALT, compress=True)
    finally:
        time.time = real_time


def test_a_token_follows_the_secret_key(settings: Any) -> None:
    first = signed_token({"e": 1, "k": "a" * 80}, salt=SALT)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only"
    second = signed_token({"e": 1, "k": "a" * 80}, salt=SALT)
    assert second == signing.dumps({"e": 1, "k": "a" * 80}, salt=SALT, compress=True) != first
    with pytest.raises(signing.BadSignature):
        signing.loads(first, salt=SALT)


def test_a_signed_part_url_verifies() -> None:
    signed = sign_put({"k": "tenant_a/art_1/trk/med.ogg", "u": "upload-1", "n": 3, "s": 100}, 60, {})
    token = signed.url.rsplit("/", 1)[1]
    assert signed.url == reverse("local-storage-put", args=[token])
    assert verify_put(token, 100)["n"] == 3


TOKENS = [
    signing.dumps({"k": "x" * 100}, salt=SALT, compress=True),
    signing.dumps({"e": 1}, salt=SALT),
    "plain",
    "with/slash",
    "ünïcode",
    "spa ce",
    "per%cent",
    "a?b#c",
]


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("script_prefix", ["/", "/portal/", "/ü/"])
def test_a_put_url_is_reverses_own(token: str, script_prefix: str) -> None:
    set_script_prefix(script_prefix)
    try:
        try:
            expected = reverse("local-storage-put", args=[token])
        except Exception as exc:  # reverse() refuses it: so must put_url
            with pytest.raises(type(exc)):
                put_url(token)
            return
        assert put_url(token) == expected
    finally:
        set_script_prefix("/")


def test_a_put_url_follows_the_urlconf(settings: Any) -> None:
    token = signing.dumps({"k": "x" * 100}, salt=SALT, compress=True)
    assert put_url(token) == f"/storage/put/{token}"
    elsewhere = ModuleType("urls_elsewhere")
    elsewhere.urlpatterns = [path("elsewhere/", include("uploads.storage_urls"))]  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = elsewhere
    assert put_url(token) == reverse("local-storage-put", args=[token]) == f"/elsewhere/put/{token}"
