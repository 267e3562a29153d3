"""``make flower`` (``python -m scripts.flower``) against a real Redis with a real worker running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from chalicelib.config.settings import PROJECT_ROOT
from scripts.api_process import HOST, free_port
from scripts.flower import flower_command, write_redis_url
from tests.helpers.processes import WorkerProcess
from tests.helpers.waiting import wait_until


def flower_workers(port: int) -> dict[str, object]:
    """Flower's list of workers, asking them again (``refresh``); {} while Flower is not up yet."""
    url = f"http://{HOST}:{port}/api/workers?refresh=1"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return dict(json.loads(response.read()))
    return {}


def test_flower_started_beside_the_stack_lists_its_worker(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    sqlite_url: str,
    celery_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # GIVEN a worker on the stack's Redis, whose URL the stack wrote to its data directory
    for key, value in {"APP_STAGE": "dev", "REDIS_URL": redis_url, "DATABASE_URL": sqlite_url}.items():
        monkeypatch.setenv(key, value)
    worker = celery_worker()
    (worker_name,) = set(re.findall(r"\b(test-[0-9a-f]{8})@", worker.log()))
    data_dir = tmp_path / "data"
    write_redis_url({"TELEHEALTH_DATA_DIR": str(data_dir)}, redis_url)
    assert (data_dir / "redis-url").stat().st_mode & 0o077 == 0

    # WHEN Flower is started the documented way, in a shell that knows no REDIS_URL
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env.update(TELEHEALTH_DATA_DIR=str(data_dir), FLOWER_PORT=str(port), FLOWER_UNAUTHENTICATED_API="true")
    log_path = tmp_path / "flower.log"
    with log_path.open("wb") as log:
        flower = subprocess.Popen(
            [sys.executable, "-m", "scripts.flower"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # THEN its API lists the worker
        def listed() -> bool:
            assert flower.poll() is None, log_path.read_text(errors="replace")
            return any(name.startswith(worker_name + "@") for name in flower_workers(port))

        wait_until(listed, timeout=30, interval=0.3)
    finally:
        # AND a stop signal to the command stops Flower: it replaced the script, nothing is left behind
        # (SIGTERM: a SIGINT may be ignored when the suite itself runs in the background)
        flower.send_signal(signal.SIGTERM)
        try:
            flower.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(flower.pid, signal.SIGKILL)


def test_without_a_running_stack_flower_says_what_to_do(tmp_path: Path) -> None:
    # GIVEN no REDIS_URL and no stack that wrote one
    # WHEN the command is built
    found = flower_command({"TELEHEALTH_DATA_DIR": str(tmp_path)})

    # THEN one line says to start the stack first
    assert isinstance(found, str) and "make run" in found
