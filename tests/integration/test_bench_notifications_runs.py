"""``make bench-notifications`` keeps working: a tiny run (figures are the bench's job, not a test's)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_notifications_prints_every_figure() -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.notifications",
            "--saturation-count",
            "20",
            "--rate",
            "20",
            "--seconds",
            "1",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    for figure in (
        f"{os.cpu_count()} worker processes",  # as make run starts them: one per CPU
        "saturation (backlog of 20)",
        "shared machine",
        "fixed load: 20 notifications",
        "p99",
    ):
        assert figure in result.stdout, result.stdout
