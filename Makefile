# make run   — install, migrate, seed, print the demo logins, serve on 127.0.0.1:8080
# make test  — lint, then the whole suite on SQLite and on PostgreSQL (its shared-state
#              parts with Redis), browser journeys, two app hosts on PostgreSQL and Redis
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask --app app
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 4

.PHONY: run test test-sqlite test-sqlite-then-e2e test-postgres test-postgres-then-cluster test-redis test-cluster test-e2e install install-test lint babel bench load clean db

TEST_STAMP := $(VENV)/.installed-test-stamp

# `make run` installs what the application needs; `make test` adds the test tools (another
# 20 s of wheels that `make run` on a fresh clone does without). The wheels are installed by
# uv (pinned below), which pip installs into the virtualenv first: measured on a fresh clone
# with empty caches, pip alone 22.6 s for the application's wheels, uv 7.1 s including
# installing uv itself. Where uv cannot be had, pip does the same install (--no-compile:
# Python compiles the modules it imports on first use instead of pip compiling every module
# of every wheel; 34 s -> 25 s). pip is upgraded only when it is too old for an editable
# pyproject install (pip < 21.3).
UV_VERSION := 0.13.9
define pip_install
	@if [ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet --no-compile uv==$(UV_VERSION) 2>/dev/null; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python $(1); \
	else \
	  $(BIN)/python -c 'import pip, sys; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))' \
	    || $(BIN)/python -m pip install --quiet --upgrade pip; \
	  $(BIN)/python -m pip install --quiet --no-compile $(1); \
	fi
endef

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call pip_install,-e .)
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(call pip_install,-e '.[test]')
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

# Migrate, sync roles, seed reference and demo data, print the demo logins: one process.
db: install
	$(FLASK) setup

run: db
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C to stop; background jobs run alongside)"
	@$(BIN)/huey_consumer worker.huey --workers 2 --quiet & jobs=$$!; \
	trap 'kill $$jobs 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) 'app:create_app()'  # one log line per request, with its request id: core/ops.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The SQLite and PostgreSQL halves share no state (each migrates its own database), so they
# run side by side, one per core; each half's output is printed whole when it ends (-O). The
# browser journeys follow the SQLite half on its core, which ends first; the two-host run
# (make test-cluster, under 2 min) follows the PostgreSQL half on its core (measured on 2
# cores before the two-host run: SQLite 11 min, PostgreSQL 14 min, journeys 8 min: 23 min).
test: lint
	@$(MAKE) --no-print-directory -O -j2 test-postgres-then-cluster test-sqlite-then-e2e

test-sqlite-then-e2e: install-test
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-e2e

test-postgres-then-cluster: install-test
	@$(MAKE) --no-print-directory test-postgres
	@$(MAKE) --no-print-directory test-cluster

test-sqlite: install-test
	@echo "==================== tests on SQLite ===================="
	$(BIN)/pytest

# The parts of the suite that touch state several hosts share (caches, list counts, permission
# and statistics version tokens, revoked API tokens, rate limits, lockout, server sessions,
# background jobs): on the PostgreSQL half they run with REDIS_URL (make test-redis), the
# rest of the suite without it, so nothing runs twice. tests/redis reads the keys back.
SHARED_STATE_TESTS := tests/platform/test_versions.py tests/platform/test_list_caches.py \
  tests/platform/test_background_export.py tests/platform/test_security.py \
  tests/platform/test_security_hardening.py tests/accounts/test_accounts.py \
  tests/cessation/test_statistics.py

define missing_banner
	echo; echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	echo "!!  $(1)"; \
	echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
endef

test-postgres: install-test
	@echo "==================== tests on PostgreSQL ================"
	@scripts/with-postgres.sh bash -c 'env -u REDIS_URL $(BIN)/pytest $(addprefix --ignore=,$(SHARED_STATE_TESTS)) \
	  && $(MAKE) --no-print-directory test-redis'; rc=$$?; \
	if [ $$rc -eq 99 ]; then \
	  if [ "$$CI" = "true" ]; then echo "FAIL: PostgreSQL is not installed, and CI must test it"; exit 1; fi; \
	  $(call missing_banner,PostgreSQL is NOT installed: the PostgreSQL half of the suite did NOT run.); \
	  echo "!!  apt-get install postgresql, or set TEST_DATABASE_URL."; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

# The shared-state tests with REDIS_URL (a throwaway redis-server: scripts/with-redis.sh), on
# PostgreSQL when TEST_DATABASE_URL is set (make test-postgres), else on SQLite.
test-redis: install-test
	@echo "==================== shared state on Redis =============="
	@scripts/with-redis.sh $(BIN)/pytest $(SHARED_STATE_TESTS) tests/redis; rc=$$?; \
	if [ $$rc -eq 99 ]; then \
	  if [ "$$CI" = "true" ]; then echo "FAIL: Redis is not installed, and CI must test it"; exit 1; fi; \
	  $(call missing_banner,Redis is NOT installed: the shared-state tests ran WITHOUT Redis.); \
	  echo "!!  apt-get install redis-server, or set REDIS_URL."; \
	  env -u REDIS_URL $(BIN)/pytest $(SHARED_STATE_TESTS); \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

# Two app hosts (gunicorn, 2 workers each, their own instance folders) and a huey consumer on
# one throwaway PostgreSQL and one throwaway Redis: tests/cluster/test_two_hosts.py.
test-cluster: install-test
	@echo "==================== two hosts on PostgreSQL and Redis ===="
	@scripts/with-postgres.sh scripts/with-redis.sh $(BIN)/pytest tests/cluster; rc=$$?; \
	if [ $$rc -eq 99 ]; then \
	  if [ "$$CI" = "true" ]; then echo "FAIL: PostgreSQL or Redis is not installed, and CI must run the two-host test"; exit 1; fi; \
	  $(call missing_banner,PostgreSQL or Redis is NOT installed: the two-host test did NOT run.); \
	  echo "!!  apt-get install postgresql redis-server."; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

# Once, not per database: browser journeys (Debian's Chromium against gunicorn) and the
# schemathesis API contract run, each over its own freshly seeded SQLite database.
CHROMIUM ?= /usr/bin/chromium
test-e2e: install-test
	@echo "==================== end-to-end: browser journeys, API contract ===="
	@if [ -x "$(CHROMIUM)" ]; then \
	  CHROMIUM=$(CHROMIUM) $(BIN)/pytest tests/e2e; \
	else \
	  if [ "$$CI" = "true" ]; then echo "FAIL: Chromium ($(CHROMIUM)) is not installed, and CI must run the browser journeys"; exit 1; fi; \
	  echo; echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  echo "!!  Chromium is NOT installed: the browser journeys did NOT run.        !!"; \
	  echo "!!  apt-get install chromium fonts-noto-cjk (never playwright install). !!"; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  $(BIN)/pytest tests/e2e/test_api_contract.py; \
	fi

babel: install-test
	PYBABEL=$(BIN)/pybabel bash babel/extract.sh

bench: install
	$(BIN)/python bench/list_page.py
	$(BIN)/python bench/export.py

# Load on gunicorn (2 workers) over the full demo dataset, at most 60 s; add
# LOAD_ARGS="--database-url postgresql://..." for PostgreSQL.
load: install
	$(BIN)/python bench/load.py $(LOAD_ARGS)

clean:
	rm -rf instance .pytest_cache
