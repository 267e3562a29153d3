"""``make bench-baseline`` keeps working: both apps, both ways of calling them, every case answered."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_baseline_runs_every_case_both_ways() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.seed_baseline", "--requests", "8"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "through each framework's test client" in result.stdout
    assert "as deployed" in result.stdout
    for case in ("POST /patients", "GET /patients/{id}", "GET /patients?per_page=20"):
        # the bench stops with an error on any unexpected status, so two lines per app mean answered
        assert result.stdout.count(f"seed {case}") == 2, result.stdout
        assert result.stdout.count(f"ours {case}") == 2, result.stdout
