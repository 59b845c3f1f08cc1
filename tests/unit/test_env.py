"""A misconfigured deployment stops at start-up, naming the variable, instead of limping on."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("off", False), ("", False)])
def test_booleans_read_the_usual_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("PORTAL_FLAG", raw)
    assert env_bool("PORTAL_FLAG") is expected


@pytest.mark.parametrize(("reader", "raw"), [(env_bool, "maybe"), (env_int, "12kb")])
def test_unreadable_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, reader: object, raw: str) -> None:
    monkeypatch.setenv("PORTAL_SETTING", raw)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_SETTING"):
        reader("PORTAL_SETTING", 1)  # type: ignore[operator]


def test_lists_are_comma_separated_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_LIST", " hi, ta ,,en ")
    assert env_list("PORTAL_LIST", []) == ["hi", "ta", "en"]
    monkeypatch.delenv("PORTAL_LIST")
    assert env_list("PORTAL_LIST", ["x"]) == ["x"]
