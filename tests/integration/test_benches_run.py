"""Every ``make bench-*`` keeps working: tiny runs, each case answered (figures are the benches' job)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

from chalicelib.config.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def run_bench(
    module: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m bench.<module> args``; fails the test with the bench's stderr if it exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=PROJECT_ROOT,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result


def environment_without(*names: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}


def test_bench_audit_prints_every_case() -> None:
    result = run_bench("audit_overhead", "--requests", "3", "--databases", "sqlite")

    for case in ("GET /patients/{id}", "GET /patients?per_page=20", "PUT /patients/{id}", "POST /patients"):
        assert case in result.stdout
    assert "audit adds" in result.stdout


def test_bench_disclosures_prints_both_halves_and_the_rows_a_page_wrote() -> None:
    result = run_bench("disclosures", "--requests", "3", "--patients", "150", "--databases", "sqlite")

    assert "disclosures add" in result.stdout
    # the bench stops with an error on any unexpected status; a page of 100 named its 100 patients
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("sqlite")]
    assert line.split()[-1] == "100"


def test_bench_baseline_runs_every_case_both_ways() -> None:
    result = run_bench("seed_baseline", "--requests", "8")

    assert "through each framework's test client" in result.stdout
    assert "as deployed" in result.stdout
    for case in ("POST /patients", "GET /patients/{id}", "GET /patients?per_page=20"):
        # the bench stops with an error on any unexpected status, so two lines per app mean answered
        assert result.stdout.count(f"seed {case}") == 2, result.stdout
        assert result.stdout.count(f"ours {case}") == 2, result.stdout


def test_bench_baseline_concurrent_postgres_prints_ratios_per_operation() -> None:
    # TEST_POSTGRES_URL's server, or an embedded one without it
    args = ("--processes", "1", "2", "--creates-only", "3", "--creates", "3", "--reads", "4", "--repeat", "2")
    result = run_bench("seed_concurrent", *args, timeout=180)

    # the bench stops with an error on any unexpected status, so a line per K and operation means answered
    assert result.stdout.count("round ") == 2, result.stdout
    spread = result.stdout.split("over 2 round(s)")[1]
    for line in ("1 create", "1 read", "2 create", "2 read", "3 create"):
        assert line in spread, result.stdout
    assert "3 read" not in spread
    # and, per K, what the database's busy backends waited on: a hot row's lock, the WAL flush
    assert result.stdout.count("busy database backends waiting") == 2, result.stdout


def test_bench_cold_start_times_both_apps() -> None:
    result = run_bench("cold_start", "--runs", "1", "--no-artifact")

    figures = (
        "minimal Chalice + SQLAlchemy ORM (dev env)",
        "ours (dev env)",
        "per-round ratio to minimal",
        "ours, FHIR read (dev env)",
        "ratio to GET /patients/{id} from the same tree",
    )
    for figure in figures:
        assert figure in result.stdout, result.stdout
    # a JSON read against minimal and a FHIR read against a JSON read, each in wall and CPU time
    assert result.stdout.count("quartiles") == 4, result.stdout


def test_bench_fhir_prints_both_reads_and_their_ratio() -> None:
    result = run_bench("fhir_reads", "--requests", "3", "--databases", "sqlite")

    # the bench stops with an error on any unexpected status
    for figure in ("GET /fhir/Patient/{id}", "GET /patients/{id}", "FHIR / JSON, medians"):
        assert figure in result.stdout, result.stdout


def test_bench_lists_prints_every_case() -> None:
    result = run_bench("patient_lists", "--rows", "300", "--requests", "3", "--databases", "sqlite")

    pages = ("first page", "middle page", "last page", "middle by cursor", "last by cursor", "GET /patients")
    for case in pages:
        assert case in result.stdout
    assert "SQLite: loaded 300 rows" in result.stderr


def test_bench_notifications_prints_every_figure() -> None:
    env = environment_without("REDIS_URL", "DATABASE_URL")
    result = run_bench(
        "notifications", "--saturation-count", "20", "--rate", "20", "--seconds", "1", env=env, timeout=180
    )

    for figure in (
        f"{os.cpu_count()} worker processes",  # as make run starts them: one per CPU
        "saturation (backlog of 20)",
        "shared machine",
        "fixed load: 20 notifications",
        "p99",
    ):
        assert figure in result.stdout, result.stdout


def test_bench_rate_limit_prints_every_case() -> None:
    env = environment_without("REDIS_URL")
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    result = run_bench("rate_limit", "--requests", "5", env=env)

    for case in ("Redis up", "limit off", "limit on", "refusing connections: first", "hung: in the back-off"):
        assert case in result.stdout
