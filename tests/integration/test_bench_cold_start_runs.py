"""``make bench-cold-start`` keeps working: one cold start per variant, no artifact build."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_cold_start_times_both_apps() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.cold_start", "--runs", "1", "--no-artifact"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    for figure in ("minimal Chalice + SQLAlchemy ORM (dev env)", "ours (dev env)", "ours (dev) / minimal"):
        assert figure in result.stdout, result.stdout
