"""The local stack, ``make run`` (``scripts.run_stack``), as a developer starts it on a laptop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from scripts.api_process import HOST
from scripts.process_tree import descendants, is_alive, kill_all
from tests.helpers.waiting import call_json, parse_json_lines

RUN_STACK = [sys.executable, "-m", "scripts.run_stack"]
# What a developer's shell or the suite may hold, which a fresh laptop does not (and which
# `make run AWS=emulated` supplies from the emulated AWS).
NOT_ON_A_LAPTOP = (
    "DATABASE_URL",
    "REDIS_URL",
    "API_TOKENS",
    "API_TOKEN_SHA256",
    "APP_STAGE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "NOTIFY_PROVIDER",
)


def stack_env(tmp_path: Path, port: int, workers: int, **settings: str) -> dict[str, str]:
    """The stack's environment: this one less NOT_ON_A_LAPTOP, its data under ``tmp_path``, ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_ON_A_LAPTOP}
    env.update(
        API_PORT=str(port),
        TELEHEALTH_DATA_DIR=str(tmp_path / "data"),
        WORKER_PROCESSES=str(workers),
        NOTIFY_FAILURE_RATE="0",
        **settings,
    )
    return env


class Stack:
    """``command`` (``scripts.run_stack`` or ``make run``) in a session of its own, as a terminal gives:
    Ctrl-C reaches its whole process group. Its output in ``log_path``."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.base_url, self.log_path = f"http://{HOST}:{env['API_PORT']}", log_path
        self.seen_pids: set[int] = set()
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def processes(self) -> list[int]:
        """Every process below the one started (remembered, to check later that none outlived it)."""
        pids = descendants(self.process.pid)
        self.seen_pids.update(pids)
        return pids

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str = DEVELOPMENT_TOKEN
    ) -> tuple[int, Any]:
        return call_json(method, self.base_url + path, body, {"Authorization": f"Bearer {token}"}, timeout=10)

    def serving(self, token: str = DEVELOPMENT_TOKEN) -> bool:
        """Whether the API answers; fails the test with the stack's output if the stack has ended."""
        assert self.process.poll() is None, self.log_path.read_text(errors="replace")
        with contextlib.suppress(OSError):
            return self.call("GET", "/health", token=token)[0] == 200
        return False

    def lines(self, process_name: str) -> list[dict[str, Any]]:
        """The JSON lines one of honcho's processes wrote (honcho prefixes "HH:MM:SS name | ")."""
        marker = f" {process_name} "
        text = self.log_path.read_text(errors="replace")
        ours = [line.split("| ", 1)[1] for line in text.splitlines() if marker in line and "| " in line]
        return parse_json_lines("\n".join(ours))

    def kill(self) -> None:
        """Kill whatever is left of the stack, every process it was seen to start included."""
        if self.process.poll() is None:
            self.processes()
        kill_all([pid for pid in self.seen_pids if is_alive(pid)], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
