"""``make bench-lists`` keeps working: a tiny run on SQLite (figures are the bench's job, not a test's)."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_lists_prints_every_case() -> None:
    command = [sys.executable, "-m", "bench.patient_lists", "--rows", "300", "--requests", "3"]
    result = subprocess.run(
        [*command, "--databases", "sqlite"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    for case in (
        "first page",
        "middle page",
        "last page",
        "middle by cursor",
        "last by cursor",
        "GET /patients",
    ):
        assert case in result.stdout
    assert "SQLite: loaded 300 rows" in result.stderr
