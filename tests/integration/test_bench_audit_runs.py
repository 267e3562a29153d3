"""``make bench-audit`` keeps working: a tiny run on SQLite (figures are the bench's job, not a test's)."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.chalice_local import PROJECT_ROOT


def test_bench_audit_prints_every_case() -> None:
    command = [sys.executable, "-m", "bench.audit_overhead", "--requests", "3", "--databases", "sqlite"]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    for case in ("GET /patients/{id}", "GET /patients?per_page=20", "PUT /patients/{id}", "POST /patients"):
        assert case in result.stdout
    assert "audit adds" in result.stdout
