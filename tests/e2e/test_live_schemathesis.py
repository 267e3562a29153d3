"""schemathesis's own CLI against the live local server, over real HTTP, on SQLite and PostgreSQL.

The server is the one ``make run`` serves (``python -m scripts.local_api``) on a migrated
database; ``schemathesis run`` reads its OpenAPI document and runs all four phases (examples,
coverage, fuzzing, stateful) from a fixed seed within a time budget, with every check, from the
repository root so that ``schemathesis.toml`` applies. The run must report no failure: the
document says what the API enforces and the API enforces what it says, with clients nobody here
wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.storage.migrate import upgrade_database
from scripts.api_process import HOST, free_port, keep_alive_command, running_server
from tests.helpers.tokens import SUITE_TOKENS, TEST_TOKEN

SEED = 20261130
# Per database, for fuzzing and stateful runs together (the first two phases take a few seconds):
# CI runs the suite twice, on two databases each.
MAX_TIME_SECONDS = 50
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    url = f"sqlite:///{tmp_path / 'telehealth.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def live_api(migrated_database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The local server on the database, with the suite's token (every scope) and no rate limit."""
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN_SHA256", "REDIS_URL", "APP_STAGE")}
    env.update(DATABASE_URL=migrated_database_url, API_TOKENS=SUITE_TOKENS, RATE_LIMIT_PER_MINUTE="0")
    port = free_port()
    log_path = tmp_path / "local_api.log"
    with running_server(keep_alive_command(port), port, env, log_path):
        yield f"http://{HOST}:{port}", log_path


def test_schemathesis_finds_nothing_against_the_live_server(live_api: tuple[str, Path]) -> None:
    base_url, log_path = live_api
    command = [str(SCHEMATHESIS), "run", f"{base_url}/openapi.json"]
    command += ["-H", f"Authorization: Bearer {TEST_TOKEN}", "--phases", "examples,coverage,fuzzing,stateful"]
    command += ["--max-time", str(MAX_TIME_SECONDS), "--seed", str(SEED)]
    # No example database in the working tree: each run starts from the seed alone.
    command += ["--generation-database", "none", "--no-color"]

    run = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=MAX_TIME_SECONDS * 4, check=False
    )

    server_log = log_path.read_text(errors="replace")[-4000:]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n--- server log (end) ---\n{server_log}"
