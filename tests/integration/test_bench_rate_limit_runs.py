"""``make bench-rate-limit`` keeps working: a tiny run (figures are the bench's job, not a test's)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_rate_limit_prints_every_case() -> None:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    if os.environ.get("TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.rate_limit", "--requests", "5"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    for case in ("Redis up", "limit off", "limit on", "refusing connections: first", "hung: in the back-off"):
        assert case in result.stdout
