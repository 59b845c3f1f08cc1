# Two commands do all set-up on a fresh clone with Python 3.11+: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test lint typecheck pytest bench bench-scale load-test clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The portal needs only requirements.txt; tests and tooling add requirements-dev.txt.
$(BIN)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(BIN)/.installed-run

# The web server, a Celery worker and Celery beat, in one terminal; Ctrl-C (or any of them
# exiting) stops all three.
# Embedded mode needs no server: the broker is a directory (kombu's filesystem transport).
run: $(BIN)/.installed-run
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --no-input
	@echo ""
	@echo "Catalog upload portal (embedded mode: SQLite, local storage, local queue, file broker) on http://$(HOST):$(PORT)/"
	@echo "  Admin login:  $(BIN)/python manage.py createsuperuser   then open http://$(HOST):$(PORT)/admin/"
	@echo "  An API key:   $(BIN)/python manage.py create_tenant tenant_demo --name 'Demo'"
	@echo "                $(BIN)/python manage.py create_api_key tenant_demo   (the key is the last line)"
	@echo "                add --role pipeline for the key the processing pipeline reports status with"
	@echo "  Upload page:  http://$(HOST):$(PORT)/upload/   (staff: sign in to the admin first)"
	@echo "  Upload link:  $(BIN)/python manage.py create_upload_link tenant_demo artisan_1   (for an artisan's phone)"
	@echo "  API docs:     http://$(HOST):$(PORT)/v1/docs/"
	@echo "  Queues:       $(BIN)/python manage.py local_queue   (processing; --topic status for status updates)"
	@echo "  Sweep:        $(BIN)/python manage.py sweep --dry-run"
	@echo ""
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' EXIT; \
	LOG_FORMAT=$${LOG_FORMAT:-text} $(BIN)/celery -A portal worker --loglevel INFO --concurrency 2 --without-gossip --without-mingle & \
	LOG_FORMAT=$${LOG_FORMAT:-text} $(BIN)/celery -A portal beat --loglevel INFO & \
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver $(HOST):$(PORT) & \
	wait -n

# Production settings on this host: gunicorn (deploy/gunicorn.conf.py), a Celery worker and beat
# against the local PostgreSQL and Redis, DEBUG off, static files collected; SECRET_KEY and the
# rest from the environment or deploy/serve.env (see deploy/serve.env.example). Ctrl-C (or any of
# them exiting) stops all three.
serve: $(BIN)/.installed-run
	deploy/serve.sh

test: $(BIN)/.installed lint typecheck pytest

lint: $(BIN)/.installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# The Python client is a public library: it passes mypy --strict, as its users' type checkers may run.
typecheck: $(BIN)/.installed
	$(BIN)/mypy .
	$(BIN)/mypy --strict uploads/client

# The browser tests drive Debian's Chromium with Playwright; setup.sh installs it (and the pinned
# Uppy and axe-core they load) when missing.
pytest: $(BIN)/.installed
	tests/browser/setup.sh
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python bench/api_throughput.py
	$(BIN)/python bench/local_upload.py
	$(BIN)/python bench/relay_throughput.py
	$(BIN)/python bench/mirror_throughput.py
	$(BIN)/python bench/client_upload.py
	$(BIN)/python bench/s3_signing.py

# Issue 12's PostgreSQL figures: seeds 1,000 and 1,000,000 submissions (about 20 minutes).
bench-scale: $(BIN)/.installed
	$(BIN)/python bench/scale.py

# Two minutes of 50 clients doing whole upload flows against the production processes (2 web
# workers, 2 Celery workers, beat) on PostgreSQL and Redis; LOAD_TEST_ARGS=--faults also kills a
# worker and restarts Redis mid-run. Long: not part of `make test` or CI (README, "Load test").
load-test: $(BIN)/.installed
	$(BIN)/python bench/load_test.py $(LOAD_TEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
