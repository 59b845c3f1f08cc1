"""One env-driven settings module. Its defaults boot the embedded mode (SQLite, local storage,
local queue); production sets DATABASE_URL, S3_RAW_MEDIA_BUCKET and SQS_QUEUE_URL."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str
from portal.private_files import create_private_file, make_private_dirs, write_private_file_once
from portal.rates import env_rate

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# 0700: the secret key, the database, stored objects and queue files are the portal's alone.
make_private_dirs(DATA_DIR)

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and env_str("DATABASE_URL"):
    # A shared database means several web processes or hosts: they must sign with one key.
    raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is.")
if not SECRET_KEY:
    # Embedded mode: a per-checkout key kept beside the data, never committed.
    _key_file = DATA_DIR / "secret_key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        write_private_file_once(_key_file, get_random_secret_key())  # 0600
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
# Behind a TLS-terminating proxy: e.g. https://portal.example.com, for the admin's forms.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
_BEHIND_TLS_PROXY = env_bool("PORTAL_BEHIND_TLS_PROXY", default=False)
if _BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only, for a site served over TLS (all off by default: the embedded mode is plain HTTP on
# 127.0.0.1). Cookies are secure behind the TLS proxy unless set otherwise. The health probes are
# never redirected: a load balancer probes the web process over plain HTTP.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=_BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=_BEHIND_TLS_PROXY)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^(?:healthz|readyz)/?$"]
# HSTS: start small (e.g. 3600) and raise it to a year (31536000) once every subdomain serves
# HTTPS; preload only when the domain is submitted to the browsers' preload list.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# Content-Security-Policy of every HTML page (portal/csp.py). The storage's origin is allowed on
# its own; list other origins the pages may reach (images, media, requests) here.
CSP_EXTRA_ORIGINS = env_list("CSP_EXTRA_ORIGINS", [])
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", default=False)

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # django.contrib.admin with the triage site as admin.site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants",
    "uploads",
]

MIDDLEWARE = [
    # First: every response (errors, redirects, probes) carries X-Request-ID and gets its log line.
    "portal.middleware.RequestContextMiddleware",
    "portal.middleware.HealthCheckMiddleware",  # /healthz, /readyz: before host checks and sessions
    "django.middleware.security.SecurityMiddleware",
    "portal.csp.ContentSecurityPolicyMiddleware",  # every HTML page; see portal/csp.py
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "portal.sqlite3"),
            # Reused per thread: opening SQLite and running the PRAGMAs costs as much as a request.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web threads and the Celery worker share the file. WAL lets readers run beside the one
    # writer; IMMEDIATE takes the write lock at BEGIN so two connections never deadlock
    # upgrading a read lock; the timeout waits out a busy writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Created 0600 before SQLite opens it (an empty file is an empty database); SQLite gives
    # its -wal and -shm files the database file's mode.
    if DATABASES["default"]["NAME"] != ":memory:":
        create_private_file(Path(DATABASES["default"]["NAME"]))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise looks there first (empty until collectstatic)
# WhiteNoise serves static files from the web process. Straight from the apps' static folders
# unless `manage.py collectstatic` has filled STATIC_ROOT (production: run it at deploy time and
# set WHITENOISE_USE_FINDERS=0).
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", default=True)
if not WHITENOISE_USE_FINDERS:
    # Collected: hashed names (cached for a year), compressed copies, ES module imports rewritten
    # to the hashed names. Pages then need collectstatic's manifest (`make serve` runs it).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "portal.static_storage.ManifestStaticStorage"},
    }

# Where the portal is reached from outside: upload links printed by `create_upload_link` start
# with it. The admin builds them from the request instead.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Browser sessions (staff in the admin, artisans through upload links) last a working day.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
SESSION_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "admin:login"  # the only sign-in page; the password-set page links to it
UPLOAD_LINK_DEFAULT_DAYS = env_int("UPLOAD_LINK_DEFAULT_DAYS", 7)
# Origins of web apps on other sites that PUT or POST bytes straight to storage: the local
# backend answers their CORS preflights, and `manage.py s3_setup_bucket` writes them into the
# bucket's CORS rule. This site's own pages need no entry.
UPLOADS_CORS_ORIGINS = env_list("UPLOADS_CORS_ORIGINS", [])

# Staff triage: a submission short of a final stage with no sign of life for this long is
# "stuck"; the admin dashboard's figures are cached this long, so a busy index stays cheap; a
# list longer than ADMIN_EXACT_COUNT_LIMIT shows an estimated count (PostgreSQL) or "N+".
ADMIN_STUCK_MINUTES = env_int("ADMIN_STUCK_MINUTES", 30)
ADMIN_DASHBOARD_CACHE_SECONDS = env_int("ADMIN_DASHBOARD_CACHE_SECONDS", 30)
ADMIN_EXACT_COUNT_LIMIT = env_int("ADMIN_EXACT_COUNT_LIMIT", 10_000)
ADMIN_PREVIEW_SECONDS = env_int("ADMIN_PREVIEW_SECONDS", 300)
# Staff sign-in throttle (portal/login_throttle.py): this many failed sign-ins for one username,
# or from one client address, pause sign-in for it for ADMIN_LOGIN_LOCKOUT_SECONDS.
ADMIN_LOGIN_MAX_FAILURES = env_int("ADMIN_LOGIN_MAX_FAILURES", 5)
ADMIN_LOGIN_MAX_FAILURES_PER_IP = env_int("ADMIN_LOGIN_MAX_FAILURES_PER_IP", 20)
ADMIN_LOGIN_LOCKOUT_SECONDS = env_int("ADMIN_LOGIN_LOCKOUT_SECONDS", 15 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.ApiKeyAuthentication",
        "tenants.auth.SessionGrantAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.auth.IsClientKey"],
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.exceptions.api_exception_handler",
    # Rates: API_RATE_PER_KEY and API_RATE_PER_TENANT below, read on every request.
    "DEFAULT_THROTTLE_CLASSES": ["portal.throttling.KeyRateThrottle", "portal.throttling.TenantRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 64 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "Catalog upload portal API",
    "DESCRIPTION": "Resumable photo and audio uploads straight to object storage, v1.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.throttling.document_rate_limits",  # every throttled operation's 429 and Retry-After
        "uploads.api.schema.document_caps",  # the 409 of the operations that start a file
    ],
}

# --- Observability ---------------------------------------------------------------------------
# Logs: one line per record on stderr, JSON (one object per line, for a log pipeline) or text
# (for a terminal); JSON unless DEBUG. Every record carries the request's or task's context
# (request_id, tenant, trackingId, mediaId: portal/observability.py); "portal.request" logs one
# line per request and "portal.task" one per Celery task, so the access log of gunicorn and
# runserver, and Celery's own per-task lines, are turned off.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "portal.observability.ContextFilter"}},
    "formatters": {
        "json": {"()": "portal.observability.JsonFormatter"},
        "text": {"()": "portal.observability.TextFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (plain text, DEBUG only) give way to the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        "django.request": {"level": "ERROR"},  # its 4xx lines repeat portal.request's; 5xx stay
        "celery.app.trace": {"level": "WARNING"},  # "Task ... succeeded": portal.task says it
        "celery.worker.strategy": {"level": "WARNING"},  # "Task ... received"
        # botocore's INFO lines ("Found credentials in environment variables.") say nothing an
        # operator acts on, and would precede every command's own output.
        "botocore": {"level": "WARNING"},
    },
}
# /readyz gives up on a dependency that has not answered in this long (each check runs at once).
READYZ_TIMEOUT_SECONDS = float(env_str("READYZ_TIMEOUT_SECONDS", "2"))
# Tracing (OpenTelemetry, portal/tracing.py) is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set;
# the exporter reads the OTEL_* variables itself (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS...).
OTEL_ENABLED = bool(env_str("OTEL_EXPORTER_OTLP_ENDPOINT"))

# --- Uploads -------------------------------------------------------------------------------
AWS_REGION = env_str("AWS_REGION", "ap-south-1")
# Set: objects go to this S3 bucket (any S3-compatible endpoint through boto3's own
# AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3). Unset: the local backend under DATA_DIR/storage.
S3_RAW_MEDIA_BUCKET = env_str("S3_RAW_MEDIA_BUCKET")
# Empty: virtual-hosted on AWS, path style for an S3-compatible endpoint (see uploads/storage/s3.py).
AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE")
# Every S3 call is bounded (botocore's defaults are 60 s per attempt): connect, a silence while
# reading, and attempts in all (the first included; botocore's "standard" retry mode).
AWS_S3_CONNECT_TIMEOUT_SECONDS = env_int("AWS_S3_CONNECT_TIMEOUT_SECONDS", 5)
AWS_S3_READ_TIMEOUT_SECONDS = env_int("AWS_S3_READ_TIMEOUT_SECONDS", 20)
AWS_S3_MAX_ATTEMPTS = env_int("AWS_S3_MAX_ATTEMPTS", 3)
# Set: processing requests go to this SQS queue (FIFO when it ends in .fifo). Unset: local queue.
SQS_QUEUE_URL = env_str("SQS_QUEUE_URL")
# Set: every stage change of a submission is announced on this SQS queue. Unset: local queue.
SQS_STATUS_QUEUE_URL = env_str("SQS_STATUS_QUEUE_URL")
# Set: upload state is mirrored to these DynamoDB tables (uploads/dynamodb.py), and processing
# reports the pipeline writes there are pulled back. Unset: no mirror.
DYNAMODB_CATALOG_TABLE = env_str("DYNAMODB_CATALOG_TABLE")
DYNAMODB_UPLOAD_STATE_TABLE = env_str("DYNAMODB_UPLOAD_STATE_TABLE")

# Signed URLs are short-lived; the upload they belong to can be resumed (with fresh URLs) for
# much longer, so a phone that loses its network overnight does not start again.
UPLOADS_URL_EXPIRY_SECONDS = env_int("UPLOADS_URL_EXPIRY_SECONDS", 3600)
UPLOADS_PART_URL_EXPIRY_SECONDS = env_int("UPLOADS_PART_URL_EXPIRY_SECONDS", 900)
UPLOADS_UPLOAD_EXPIRY_SECONDS = env_int("UPLOADS_UPLOAD_EXPIRY_SECONDS", 7 * 24 * 3600)
UPLOADS_MULTIPART_THRESHOLD = env_int("UPLOADS_MULTIPART_THRESHOLD", 16 * 1024 * 1024)
# S3's own limits; the minimum is a setting only so tests can use small parts.
UPLOADS_MIN_PART_SIZE = env_int("UPLOADS_MIN_PART_SIZE", 5 * 1024 * 1024)
UPLOADS_MAX_PART_SIZE = 5 * 1024**3
UPLOADS_MAX_PARTS = 10_000
UPLOADS_DEFAULT_PART_SIZE = env_int("UPLOADS_DEFAULT_PART_SIZE", 8 * 1024 * 1024)
UPLOADS_MAX_SIGN_BATCH = 100
# Per-tenant limits default to these; a Tenant row may lower or raise them.
UPLOADS_DEFAULT_MAX_PHOTO_BYTES = env_int("UPLOADS_DEFAULT_MAX_PHOTO_BYTES", 50 * 1024 * 1024)
UPLOADS_DEFAULT_MAX_AUDIO_BYTES = env_int("UPLOADS_DEFAULT_MAX_AUDIO_BYTES", 2 * 1024**3)
# India's 22 scheduled languages plus English: ISO 639-1 codes where one exists; Bodo, Dogri,
# Konkani, Maithili, Manipuri and Santali have none, so they use their ISO 639-2/3 codes.
UPLOADS_LANGUAGES = env_list(
    "UPLOADS_LANGUAGES",
    [
        "as", "bn", "brx", "doi", "gu", "hi", "kn", "ks", "kok", "mai", "ml", "mni",
        "mr", "ne", "or", "pa", "sa", "sat", "sd", "ta", "te", "ur", "en",
    ],
)  # fmt: skip
UPLOADS_LOCAL_ROOT = DATA_DIR / "storage"
UPLOADS_LOCAL_QUEUE_DIR = DATA_DIR / "queue"
# Submissions still initiated or uploading this long after they began are expired by the sweep.
UPLOADS_SUBMISSION_TTL_SECONDS = env_int("UPLOADS_SUBMISSION_TTL_SECONDS", UPLOADS_UPLOAD_EXPIRY_SECONDS)

# --- Limits ----------------------------------------------------------------------------------
# The cache holds the rate limits' counters (and the admin dashboard's figures). Production:
# CACHE_URL=redis://host:6379/1, one Redis database for the cache alone (clearing the cache
# empties that database), shared by every web process so they count together. Unset: this
# process's memory, enough for the embedded mode's single web process.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis://, rediss:// or unix:// URL, got {CACHE_URL!r}")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "portal"),
            # A Redis that hangs must not hang requests: the rate limits then let requests through.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Requests per API key (or upload-link / staff session) and per tenant (all its keys), "N/unit"
# with unit s, min, hour or day ("100/10s" too), or "off". A flow (initiate two files, sign
# parts in batches of up to 100, complete, poll status) is 6-10 requests: a key's default is
# 120+ flows a minute, and a tenant's fleet of apps on several keys shares 5 times that.
API_RATE_PER_KEY = env_rate("API_RATE_PER_KEY", "1200/min")
API_RATE_PER_TENANT = env_rate("API_RATE_PER_TENANT", "6000/min")
# Per-tenant caps on what is in flight; a Tenant row's own value (admin) replaces the default.
# Open uploads: files pending, neither finished, aborted nor expired. Reserved bytes: their
# declared sizes, a file of undeclared size counting as its kind's size limit (what storage
# lets it grow to). Files per submission: those not aborted or expired.
UPLOADS_DEFAULT_MAX_OPEN_UPLOADS = env_int("UPLOADS_DEFAULT_MAX_OPEN_UPLOADS", 1000)
UPLOADS_DEFAULT_MAX_RESERVED_BYTES = env_int("UPLOADS_DEFAULT_MAX_RESERVED_BYTES", 100 * 1024**3)
UPLOADS_DEFAULT_MAX_FILES_PER_SUBMISSION = env_int("UPLOADS_DEFAULT_MAX_FILES_PER_SUBMISSION", 10)

# --- Outbox relay ----------------------------------------------------------------------------
# A failed send is retried after 2, 4, 8 ... seconds (jittered, capped), then marked failed for
# staff after OUTBOX_MAX_ATTEMPTS: with the defaults, after a queue outage of 1 to 1.5 hours.
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 15)
OUTBOX_BACKOFF_BASE_SECONDS = env_int("OUTBOX_BACKOFF_BASE_SECONDS", 2)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 900)
# A row still "sending" this long after its claim belongs to a sender that died mid-send;
# publishers bound each send well below it (see uploads/queue/sqs.py).
OUTBOX_STALE_CLAIM_SECONDS = env_int("OUTBOX_STALE_CLAIM_SECONDS", 300)

# --- Celery ----------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport under DATA_DIR/broker, so a real worker and beat
# run with no server. Production: redis://... or sqs://.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _BROKER_DIR = DATA_DIR / "broker"
    make_private_dirs(_BROKER_DIR / "processed")
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_BROKER_DIR),
        "data_folder_out": str(_BROKER_DIR),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # A task whose worker died unacknowledged is handed out again after this long. The outbox
    # does not wait for it: the relay reclaims a stale row after OUTBOX_STALE_CLAIM_SECONDS.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
# One broker can serve several deployments (or test runs), each on its own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A broker outage must not hold a request: publishing a task tries twice at once and gives up
# (the periodic relay sends what the task would have).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Every periodic job, in one place.
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {
        "task": "uploads.outbox.relay",
        "schedule": env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 10),
    },
    "expiry-sweep": {
        "task": "uploads.sweep.expire",
        "schedule": env_int("UPLOADS_SWEEP_INTERVAL_SECONDS", 300),
    },
}
if DYNAMODB_CATALOG_TABLE:
    CELERY_BEAT_SCHEDULE["mirror-pull"] = {
        "task": "uploads.mirror.pull",
        "schedule": env_int("DYNAMODB_PULL_INTERVAL_SECONDS", 15),
    }
