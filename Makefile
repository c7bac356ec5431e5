# qa2portal: `make run` serves the embedded demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS := 1

# The suite runs against real PostgreSQL and Redis on this machine (override if elsewhere).
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/qa2portal} \
            CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/15} \
            QA2_VAR_DIR=$${TEST_VAR_DIR:-$(CURDIR)/var/test}

.PHONY: run test journey bench lint format install install-dev services clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python manage.py run_embedded

services:
	bin/ensure-test-services

test: install-dev services
	$(TEST_ENV) $(BIN)/pytest

# The reducer's journey on the demo data alone (.ci/run runs it again from a copy under /tmp).
journey: install-dev services
	$(TEST_ENV) $(BIN)/pytest tests/journeys/test_demo_journey.py -k by_links

bench: install-dev services
	$(TEST_ENV) $(BIN)/pytest tests/benchmarks -o python_files="bench_*.py" -s -q --no-header

# bandit: every medium or high finding is fixed or carries `# nosec BXXX` on its line, with the
# reason in the comment above it.
BANDIT_PATHS := assignments calibration reports qa2portal

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -r $(BANDIT_PATHS) -ll -ii -q

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/test var/bench
