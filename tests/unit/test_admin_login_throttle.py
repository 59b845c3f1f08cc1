"""Staff sign-in is throttled: repeated failures for one username, or from one address, pause
sign-in for a cool-off, whatever the password; a successful sign-in clears the count."""

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-right-pass-77"
LOCKED = "Too many failed sign-ins"


@pytest.fixture
def meena() -> User:
    return User.objects.create_user("meena", password=PASSWORD, is_staff=True)


def sign_in(username: str, password: str, address: str = "203.0.113.7") -> Any:
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"}
    )


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def fail(username: str, times: int, address: str = "203.0.113.7") -> None:
    for _ in range(times):
        response = sign_in(username, "wrong", address)
        assert response.status_code == 200 and not signed_in(response)


def test_five_failures_pause_sign_in_even_with_the_right_password(meena: User) -> None:
    fail("meena", 4)
    assert signed_in(sign_in("meena", PASSWORD))  # four are not enough
    fail("meena", 5)
    response = sign_in("meena", PASSWORD)
    assert not signed_in(response)
    assert LOCKED in response.content.decode()
    assert "15 more minute" in response.content.decode()


def test_pause_ends_after_the_cool_off(meena: User, monkeypatch: pytest.MonkeyPatch) -> None:
    fail("meena", 5)
    assert not signed_in(sign_in("meena", PASSWORD))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 15 * 60 + 1)
    assert signed_in(sign_in("meena", PASSWORD))


def test_successful_sign_in_clears_the_failures(meena: User) -> None:
    fail("meena", 4)
    assert signed_in(sign_in("meena", PASSWORD))
    fail("meena", 4)
    assert signed_in(sign_in("meena", PASSWORD))


def test_pause_holds_for_the_username_from_any_address(meena: User) -> None:
    for number in range(5):
        fail("meena", 1, address=f"198.51.100.{number}")
    assert not signed_in(sign_in("meena", PASSWORD, address="192.0.2.99"))


def test_another_account_signs_in_while_one_is_paused(meena: User) -> None:
    User.objects.create_user("ravi", password=PASSWORD, is_staff=True)
    fail("meena", 5)
    assert signed_in(sign_in("ravi", PASSWORD, address="192.0.2.50"))


def test_failures_across_usernames_from_one_address_pause_that_address(meena: User, settings: Any) -> None:
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP = 6
    for number in range(6):
        fail(f"guess{number}", 1)
    assert LOCKED in sign_in("meena", PASSWORD).content.decode()
    assert signed_in(sign_in("meena", PASSWORD, address="192.0.2.50"))  # other addresses are not paused


def test_behind_the_proxy_the_address_is_the_one_the_proxy_appended(meena: User, settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP = 3
    for number in range(3):  # a client varying the X-Forwarded-For it sends itself
        Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"1.2.3.{number}, 203.0.113.7").post(
            "/admin/login/", {"username": f"guess{number}", "password": "wrong"}
        )
    response = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7").post(
        "/admin/login/", {"username": "meena", "password": PASSWORD}
    )
    assert LOCKED in response.content.decode()
    other = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8").post(
        "/admin/login/", {"username": "meena", "password": PASSWORD}
    )
    assert other.status_code == 302  # another client behind the same proxy is not paused


def test_a_cache_that_does_not_answer_leaves_sign_in_working(meena: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from portal import login_throttle

    class Down:
        def __getattr__(self, name: str) -> Any:
            def fails(*args: Any, **kwargs: Any) -> Any:
                raise ConnectionError("cache down")

            return fails

    monkeypatch.setattr(login_throttle, "cache", Down())
    fail("meena", 6)
    assert signed_in(sign_in("meena", PASSWORD))
