"""Rate strings such as "1200/min": parsed here, apart from DRF, so the settings module can
refuse a bad value at start-up and the throttles read the same value at request time."""

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from portal.env import env_str

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_UNITS |= {"d": 86400, "day": 86400}
_RATE = re.compile(r"(?P<count>\d+)\s*/\s*(?P<multiple>\d*)\s*(?P<unit>[a-z]+?)s?")
OFF = {"", "off", "none"}


@dataclass(frozen=True)
class Rate:
    """At most `count` requests per window of `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"


def parse_rate(text: str | None) -> Rate | None:
    """ "1200/min", "20/s", "100/10s", "5000/hour", "50000/day"; "off" (or empty) is no limit.
    Raises ValueError for anything else."""
    value = (text or "").strip().lower()
    if value in OFF:
        return None
    match = _RATE.fullmatch(value)
    if match is None or match["unit"] not in _UNITS or int(match["count"]) < 1:
        raise ValueError(f"not a rate: {text!r} (e.g. '1200/min', '20/s', '100/10s', 'off')")
    seconds = _UNITS[match["unit"]] * int(match["multiple"] or 1)
    if seconds < 1:
        raise ValueError(f"not a rate: {text!r} (a window of at least one second)")
    return Rate(count=int(match["count"]), seconds=seconds)


def env_rate(name: str, default: str) -> str:
    """A rate setting from the environment, checked: a typo stops start-up instead of every request."""
    value = env_str(name, default)
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None
    return value
