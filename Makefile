# Everyday commands. Each one creates .venv and installs requirements-dev.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint migrate bench-notifications

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

## run: the whole local stack on http://127.0.0.1:8000 (Ctrl-C stops it)
run: $(INSTALLED)
	$(BIN)/python -m scripts.run_stack

## test: the whole suite (SQLite, PostgreSQL, Redis, Celery, chalice local)
test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

migrate: $(INSTALLED)
	$(BIN)/python -m chalicelib.schema

## bench-notifications: notifications/s at saturation and commit-to-delivered latency at 100/s
bench-notifications: $(INSTALLED)
	$(BIN)/python -m bench.notifications $(BENCH_ARGS)
