"""``make run``'s stack (``python -m scripts.run_stack``) as a laptop runs it, over real sockets.

Nothing configured: migrations, an embedded Valkey, the API, one worker process
per ``WORKER_PROCESSES`` and the relay, all under honcho. A change made through
the API is delivered by a worker, one correlation id links the API's access
line to the worker's delivery line, and Ctrl-C stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import DEVELOPMENT_TOKEN
from scripts.api_process import HOST, PROJECT_DIR, free_port
from tests.conftest import parse_json_lines, wait_until

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}
# Variables a developer's shell or the suite may hold, which a fresh laptop does not.
UNSET = ("DATABASE_URL", "REDIS_URL", "API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE", "LOG_LEVEL")


class Stack:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
        self.process, self.base_url, self.log_path = process, base_url, log_path

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {**AUTH, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def lines(self, process_name: str) -> list[dict[str, Any]]:
        """The JSON lines one of honcho's processes wrote (honcho prefixes "HH:MM:SS name | ")."""
        marker = f" {process_name} "
        text = self.log_path.read_text(errors="replace")
        ours = [line.split("| ", 1)[1] for line in text.splitlines() if marker in line and "| " in line]
        return parse_json_lines("\n".join(ours))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    port = free_port()
    env.update(
        API_PORT=str(port),
        TELEHEALTH_DATA_DIR=str(tmp_path / "data"),
        WORKER_PROCESSES="2",
        NOTIFY_FAILURE_RATE="0",
    )
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log:
        # A session of its own, as a terminal gives: Ctrl-C reaches its whole process group.
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_stack"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(process, f"http://{HOST}:{port}", log_path)
    try:
        yield stack
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def serving(stack: Stack) -> bool:
    assert stack.process.poll() is None, stack.log_path.read_text(errors="replace")
    with contextlib.suppress(OSError):
        return stack.call("GET", "/health")[0] == 200
    return False


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_serves_delivers_with_every_worker_and_stops_on_ctrl_c(stack: Stack, tmp_path: Path) -> None:
    # GIVEN the stack, started with nothing configured
    wait_until(lambda: serving(stack), timeout=90, interval=0.2)
    wait_until(lambda: all(f"worker.{n}@" in stack.log_path.read_text() for n in (1, 2)), timeout=60)

    # WHEN a patient is created through the API
    status, created = stack.call(
        "POST", "/patients", {"name": "John Doe", "email": "john@example.com", "phone": "123-456-7890"}
    )
    assert status == 201, created
    notification_id = created["notification_id"]

    # THEN a worker delivers its notification
    def delivered() -> dict[str, Any] | None:
        body = stack.call("GET", f"/notifications/{notification_id}")[1]
        return body if body["status"] == "delivered" else None

    notification = wait_until(delivered, timeout=60)
    # and one id links the API's access line for the create to the worker's delivery line
    (create_line,) = [
        line for line in stack.lines("api.1") if line.get("route") == "/patients" and line["method"] == "POST"
    ]
    assert create_line["status"] == 201
    assert notification["correlation_id"] == create_line["request_id"]
    worker_lines = stack.lines("worker.1") + stack.lines("worker.2")
    (delivery_line,) = [
        line
        for line in worker_lines
        if line["message"] == "notification delivered" and line["notification_id"] == notification_id
    ]
    assert delivery_line["correlation_id"] == create_line["request_id"]
    # and the database is the development SQLite file in the data directory
    assert (tmp_path / "data" / "telehealth.db").is_file()

    # WHEN Ctrl-C is pressed
    os.killpg(stack.process.pid, signal.SIGINT)

    # THEN every process of the stack exits, the embedded Valkey included
    assert stack.process.wait(timeout=60) is not None
    deadline = time.monotonic() + 30
    while process_group_alive(stack.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_group_alive(stack.process.pid), "a process of the stack outlived Ctrl-C"
