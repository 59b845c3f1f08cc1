"""Test settings: the embedded defaults, with a throwaway data dir and small parts."""

import os
import tempfile

os.environ.setdefault("PORTAL_DATA_DIR", tempfile.mkdtemp(prefix="portal-test-"))
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from portal.settings import *  # noqa: F403

# S3 requires 5 MiB parts; tests exercise the same plan arithmetic with small ones.
UPLOADS_MIN_PART_SIZE = 64 * 1024
UPLOADS_DEFAULT_PART_SIZE = 64 * 1024
UPLOADS_MULTIPART_THRESHOLD = 256 * 1024
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# This process's memory whatever CACHE_URL says: tests clear the cache between them, which on
# Redis would empty a database others use. Rate limits stay on, high enough for any test's
# requests; tests of the limits lower them (tests/api/test_rate_limits.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
API_RATE_PER_KEY = API_RATE_PER_TENANT = "100000/min"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: concurrency tests then meet SQLite as the embedded mode
    # runs it (WAL, IMMEDIATE transactions, busy timeout).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

# Tasks run in-process when published (on commit), as a worker would run them right after; the
# real-worker tests (tests/integration/test_celery_worker.py) switch this off for themselves.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
