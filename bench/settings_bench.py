"""Benchmark settings: the portal's own settings, plus a trivial endpoint to measure against.
Only the URLconf changes, so the API under test is exactly the one `make run` serves."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline_urls"
