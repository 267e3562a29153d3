# Everyday commands. Each one creates .venv and installs requirements-dev.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run flower test test-fast lint scan migrate browser smoke bench-baseline bench-local bench-lists bench-search bench-rate-limit package bench-cold-start bench-audit bench-disclosures bench-notifications bench-fhir

$(INSTALLED): requirements.txt requirements-worker.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

## run: the whole local stack on http://127.0.0.1:$API_PORT (8000); Ctrl-C, SIGTERM or SIGHUP stop it all
## (`make run AWS=emulated`: against moto_server, secrets from SSM/Secrets Manager, delivery through SES/SNS)
run: $(INSTALLED)
	$(BIN)/python -m scripts.run_stack

## flower: Celery's dashboard for the running stack's workers on http://127.0.0.1:$FLOWER_PORT (5555)
flower: $(INSTALLED)
	$(BIN)/python -m scripts.flower

## test: the whole suite (SQLite, PostgreSQL, Redis, Celery, chalice local, headless Chromium), in
## $(TEST_PROCESSES) pytest-xdist processes (2), a test module per process at a time; each process starts its own
## embedded servers and holds its own databases and Redis database number, as separate runs already do
TEST_PROCESSES ?= 2
test: $(INSTALLED)
	$(BIN)/python -m pytest --numprocesses $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

## test-fast: the edit loop, under a minute: unit and in-process API tests on SQLite only, no server started
## (the tiers it leaves out are the markers in pyproject.toml; tests/conftest.py sets them)
FAST_TESTS := not (postgres or redis or worker or integration or e2e or deploy or browser or slow)
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -m "$(FAST_TESTS)" $(PYTEST_ARGS)

## browser: Debian's chromium + chromedriver for the docs-page test (apt-get, only when missing;
## the test installs them itself when it runs as root or in CI)
browser:
	bash scripts/install_browser.sh

## bench-lists: load 1,000,000 patients into throwaway PostgreSQL and SQLite databases, time the lists
bench-lists: $(INSTALLED)
	$(BIN)/python -m bench.patient_lists $(BENCH_ARGS)

## bench-search: 1,000,000 patients on PostgreSQL and 100,000 on SQLite, p50/p99 of each search criterion,
## the prefix table against pg_trgm, index sizes
bench-search: $(INSTALLED)
	$(BIN)/python -m bench.patient_search $(BENCH_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## scan: checkov, cfn-lint (serverless rules) and hadolint on what `make package` renders; the skips and their
## reasons are deploy/scan_skips.toml, anything else fails. The scanners have their own venv (.venv-scan):
## checkov's dependencies conflict with ours
SCAN_VENV := .venv-scan
SCAN_INSTALLED := $(SCAN_VENV)/.installed

$(SCAN_INSTALLED): requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $(SCAN_INSTALLED)

scan: $(INSTALLED) $(SCAN_INSTALLED)
	$(BIN)/python -m deploy.scan

## migrate: a migration needs only DATABASE_URL (its stage, if none is set: dev)
migrate: $(INSTALLED)
	APP_STAGE=$${APP_STAGE:-dev} $(BIN)/python -m chalicelib.storage.migrate

## bench-baseline: per-request cost against the seed-style Flask app (SQLite), then K processes at once on PostgreSQL
bench-baseline: $(INSTALLED)
	$(BIN)/python -m bench.seed_baseline
	$(BIN)/python -m bench.seed_concurrent $(BENCH_ARGS)

## bench-local: requests/s and p50/p99 of GET /patients/{id}, stock chalice local beside scripts.local_api
bench-local: $(INSTALLED)
	$(BIN)/python -m bench.local_server

## bench-rate-limit: p50/p99 of a request with the rate limit off, on, and with Redis refusing or hung
bench-rate-limit: $(INSTALLED)
	$(BIN)/python -m bench.rate_limit $(BENCH_ARGS)

## package: the prod stage for Lambda as SAM (build/package/sam) and Terraform (build/package/terraform)
package: $(INSTALLED)
	$(BIN)/python -m deploy.package

## smoke: after a deploy, check the live API: make smoke API_URL=https://… TOKEN=… (SMOKE_ARGS=--timeout 300)
## /health, a 401, create → read → delivered → delete → 404, TLS 1.2+ (scripts/smoke.py: standard library
## only, no venv needed; the token is read from the environment; prints neither it nor patient data)
smoke:
	@$(PYTHON) -m scripts.smoke $(SMOKE_ARGS)

## bench-fhir: p50/p99 of a warm GET /fhir/Patient/{id} against GET /patients/{id}, interleaved, SQLite and PostgreSQL
bench-fhir: $(INSTALLED)
	$(BIN)/python -m bench.fhir_reads $(BENCH_ARGS)

## bench-cold-start: cold start of GET /patients/{id} as Lambda runs it, against a minimal Chalice app, and of GET /fhir/Patient/{id} (BENCH_ARGS="--against main": and main's JSON read)
bench-cold-start: $(INSTALLED)
	$(BIN)/python -m bench.cold_start $(BENCH_ARGS)

## bench-audit: what the audit trail adds per request, with and without it interleaved, SQLite and PostgreSQL
bench-audit: $(INSTALLED)
	$(BIN)/python -m bench.audit_overhead $(BENCH_ARGS)

## bench-disclosures: what naming the 100 patients of a list page adds to it, with and without interleaved, SQLite and PostgreSQL
bench-disclosures: $(INSTALLED)
	$(BIN)/python -m bench.disclosures $(BENCH_ARGS)

## bench-notifications: notifications/s at saturation and commit-to-delivered latency at 100/s
bench-notifications: $(INSTALLED)
	$(BIN)/python -m bench.notifications $(BENCH_ARGS)
