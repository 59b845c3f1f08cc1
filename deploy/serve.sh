#!/usr/bin/env bash
# The portal as production runs it: gunicorn (deploy/gunicorn.conf.py), Celery workers and one
# Celery beat, against PostgreSQL and Redis, DEBUG off, static files collected and served by
# WhiteNoise.
#
#   deploy/serve.sh            prepare, then web + one worker + beat in one terminal (`make serve`);
#                              Ctrl-C, SIGTERM or any of the three exiting stops all three
#   deploy/serve.sh prepare    migrate and collectstatic: once per deploy, before the new code serves
#   deploy/serve.sh web        gunicorn only     } one process type each, for a process manager
#   deploy/serve.sh worker     a Celery worker   } (systemd, a container) that runs many web and
#   deploy/serve.sh beat       Celery beat       } worker processes but exactly one beat
#
# Settings come from the environment, then from the env file (SERVE_ENV_FILE, default
# deploy/serve.env; KEY=value lines, no quotes, as systemd's EnvironmentFile and docker's
# --env-file read them): a variable already set wins over the file. See deploy/serve.env.example.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
BIN=${PORTAL_BIN:-.venv/bin}

env_file=${SERVE_ENV_FILE:-deploy/serve.env}
if [[ -f $env_file ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        key=${line%%=*}
        if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ || $line != *=* ]]; then
            echo "$env_file: expected KEY=value, got: $line" >&2
            exit 2
        fi
        [[ -v $key ]] || export "${line?}"
    done <"$env_file"
fi

# The local services by default; an operator points these at their own.
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
export CACHE_URL=${CACHE_URL:-redis://127.0.0.1:6379/1}
# Apart from `make run`'s embedded data (its SQLite file and objects): local storage and the
# local queue, when S3 and SQS are not configured, and the collected static files.
export PORTAL_DATA_DIR=${PORTAL_DATA_DIR:-var/serve}
# Production: never DEBUG (it keeps every SQL query in memory and shows tracebacks), and static
# files only from collectstatic's output, under hashed names.
export DEBUG=0 WHITENOISE_USE_FINDERS=0

if [[ -z ${SECRET_KEY:-} ]]; then
    cat >&2 <<MSG
SECRET_KEY is not set. Every web process and worker must sign with the same key, so it is
configuration, not something a process may invent. Export it, or put it in $env_file:
    cp deploy/serve.env.example deploy/serve.env && chmod 600 deploy/serve.env
    echo "SECRET_KEY=\$($BIN/python -c 'import secrets; print(secrets.token_urlsafe(50))')" >>deploy/serve.env
MSG
    exit 2
fi

prepare() {
    "$BIN/python" manage.py migrate --no-input
    "$BIN/python" manage.py collectstatic --no-input --verbosity 0
}

case ${1:-all} in
prepare) prepare ;;
web) exec "$BIN/gunicorn" --config deploy/gunicorn.conf.py portal.wsgi ;;
worker)
    # Unique per process, so several workers on one host do not share a node name.
    exec "$BIN/celery" -A portal worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
        --concurrency "${CELERY_WORKER_CONCURRENCY:-2}" --hostname "worker-$$@%h" \
        --without-gossip --without-mingle
    ;;
beat) exec "$BIN/celery" -A portal beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" ;;
all)
    prepare
    echo ""
    echo "Catalog upload portal (production settings: gunicorn, PostgreSQL, Redis, DEBUG off)"
    echo "  on http://${GUNICORN_BIND:-${HOST:-127.0.0.1}:${PORT:-8000}}/   data: $PORTAL_DATA_DIR"
    echo "  database ${DATABASE_URL##*@}, broker $CELERY_BROKER_URL, cache $CACHE_URL"
    echo ""
    # Each child runs with its own signal handlers (gunicorn and Celery install them); SIGTERM to
    # all on the way out is their graceful stop: requests and tasks in flight finish first.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
    "$here/serve.sh" web &
    "$here/serve.sh" worker &
    "$here/serve.sh" beat &
    status=0
    wait -n || status=$?
    exit "$status"
    ;;
*)
    echo "usage: deploy/serve.sh [all|prepare|web|worker|beat]" >&2
    exit 2
    ;;
esac
