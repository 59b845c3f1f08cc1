"""gunicorn's configuration for the portal (`gunicorn -c deploy/gunicorn.conf.py portal.wsgi`).

Every value an operator tunes per host comes from the environment, so one file serves a laptop
(`make serve`), a VM and a container. Threads, not async workers: the portal's requests are short
database transactions and storage calls that release the GIL while they wait."""

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Where to listen: a load balancer or reverse proxy in front. Heroku-style WEB_CONCURRENCY sets
# the worker processes; each holds up to `threads` database connections (CONN_MAX_AGE keeps
# them), so PostgreSQL needs workers x threads connections per web host.
bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = _int("WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# A request stuck this long (a hung storage call) gets its worker restarted; uploads through the
# local backend stream 5 MiB+ parts, so it is generous. Keep-alive stays above the load
# balancer's idle timeout (60 s on an AWS ALB), so the balancer closes an idle connection first
# and never sends a request down one gunicorn has just closed.
timeout = _int("GUNICORN_TIMEOUT", 60)
keepalive = _int("GUNICORN_KEEPALIVE", 75)
# SIGTERM: stop accepting, let requests in flight finish for this long, then exit.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then, so a slow leak in any library cannot grow without bound.
max_requests = _int("GUNICORN_MAX_REQUESTS", 10_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1_000)
# The proxy's X-Forwarded-* are trusted from these addresses only (the portal reads
# X-Forwarded-Proto when PORTAL_BEHIND_TLS_PROXY is set).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The portal logs one JSON line per request itself (logger portal.request, with the request id
# and tenant); gunicorn's access log would only repeat it without them. Errors still go to stderr.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No control socket: nothing on this host needs to drive gunicorn except signals.
control_socket_disable = True
proc_name = "portal-web"
