# Everyday commands. Each one creates .venv and installs requirements-dev.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint migrate package bench-cold-start

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

## package: the prod stage for Lambda as SAM (build/package/sam) and Terraform (build/package/terraform)
package: $(INSTALLED)
	$(BIN)/python -m deploy.package

## bench-cold-start: cold start of GET /patients/{id} as Lambda runs it, against a minimal Chalice app
bench-cold-start: $(INSTALLED)
	$(BIN)/python -m bench.cold_start
