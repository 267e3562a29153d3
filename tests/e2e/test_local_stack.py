"""``make run``'s stack (``python -m scripts.run_stack``) as a laptop runs it, over real sockets.

Nothing configured: migrations, an embedded Valkey, the API (which also runs the
relay, a scheduled function) and one worker process per ``WORKER_PROCESSES``, all
under honcho. A change made through the API is delivered by a worker, one
correlation id links the API's access line to the worker's delivery line, and
Ctrl-C, SIGTERM or SIGHUP, sent to the stack or to ``make run``, stops every
process it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from scripts.api_process import HOST, free_port
from scripts.process_tree import is_alive
from tests.helpers.patients import JOHN
from tests.helpers.processes import run_in_a_session
from tests.helpers.stack import RUN_STACK, Stack, stack_env
from tests.helpers.waiting import wait_until

MAKE_RUN = ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "run"]


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    return start_stack()


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_serves_delivers_with_every_worker_and_stops_on_ctrl_c(stack: Stack, tmp_path: Path) -> None:
    # GIVEN the stack, started with nothing configured
    wait_until(stack.serving, timeout=90, interval=0.2)
    wait_until(lambda: all(f"worker.{n}@" in stack.log_path.read_text() for n in (1, 2)), timeout=60)

    # WHEN a patient is created through the API
    status, created = stack.call("POST", "/patients", JOHN)
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
    # and the metrics of both are there to read, EMF lines beside the log lines (METRICS=emf by default)
    api_lines = stack.lines("api.1")
    created_metrics = [line for line in api_lines if "_aws" in line and line.get("Route") == "/patients"]
    assert [(line["StatusClass"], line["Requests"]) for line in created_metrics] == [("2xx", 1)]
    wait_until(
        lambda: [
            line
            for line in stack.lines("worker.1") + stack.lines("worker.2")
            if "_aws" in line and "NotificationsDelivered" in line
        ]
    )
    # and the database is the development SQLite file in the data directory
    assert (tmp_path / "data" / "telehealth.db").is_file()

    # WHEN `make smoke` checks it, as it checks a deployed API
    smoke = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "smoke", "SMOKE_ARGS=--timeout 60"],
        env={**os.environ, "API_URL": stack.base_url, "TOKEN": DEVELOPMENT_TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN every check passes, one line each, and it prints neither the token nor the patient's email
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert [line.split(":")[0] for line in smoke.stdout.splitlines()] == [
        f"PASS {name}"
        for name in (
            *("tls", "health", "401 without a token", "create", "read", "notification", "delete"),
            *("read after delete", "smoke"),
        )
    ]
    assert smoke.stdout.splitlines()[0] == "PASS tls: no TLS (local)"
    assert DEVELOPMENT_TOKEN not in smoke.stdout + smoke.stderr
    assert "@" not in smoke.stdout + smoke.stderr

    # WHEN Ctrl-C is pressed
    started = stack.processes()
    os.killpg(stack.process.pid, signal.SIGINT)

    # THEN every process of the stack exits, the embedded Valkey included
    assert stack.process.wait(timeout=60) is not None
    deadline = time.monotonic() + 30
    while process_group_alive(stack.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_group_alive(stack.process.pid), "a process of the stack outlived Ctrl-C"
    assert_all_stopped(stack, started)


def running_in_full(stack: Stack, workers: int) -> list[int]:
    """Wait until the API answers and every worker is up; the processes below the one started."""
    wait_until(stack.serving, timeout=90, interval=0.2)
    names = [f"worker.{n}@" for n in range(1, workers + 1)]
    wait_until(lambda: all(name in stack.log_path.read_text() for name in names), timeout=60)
    started = stack.processes()
    # valkey, honcho (a process of its own per Procfile entry too), the API, the workers
    assert len(started) >= 3 + workers, started
    return started


def assert_all_stopped(stack: Stack, started: list[int]) -> None:
    wait_until(lambda: not any(is_alive(pid) for pid in started), timeout=30)
    with contextlib.suppress(OSError):
        stack.call("GET", "/health")
        pytest.fail("the API still answers")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_run_stack_alone_stops_every_process(
    start_stack: Callable[..., Stack], signum: signal.Signals
) -> None:
    # GIVEN the stack, serving
    stack = start_stack(workers=1)
    started = running_in_full(stack, workers=1)

    # WHEN only scripts.run_stack gets the signal (a process manager, a closed terminal)
    os.kill(stack.process.pid, signum)

    # THEN it exits, and so does every process it started
    assert stack.process.wait(timeout=60) == 0
    assert_all_stopped(stack, started)


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"],
)
def test_stopping_make_run_alone_stops_every_process(
    start_stack: Callable[..., Stack], signum: signal.Signals
) -> None:
    # GIVEN `make run`, with the virtualenv already installed (else make would install it first)
    if subprocess.run(["make", "-q", "-C", str(PROJECT_ROOT), ".venv/.installed"], check=False).returncode:
        pytest.skip("make run would install .venv first")
    stack = start_stack(MAKE_RUN, workers=1)
    started = running_in_full(stack, workers=1)

    # WHEN only make gets the signal (`kill <pid of make>`, an IDE's stop button, `kill -HUP` or
    # `kill -INT` to make alone, which make does not pass on), or dies at once
    os.kill(stack.process.pid, signum)

    # THEN every process below it exits too
    stack.process.wait(timeout=60)
    assert_all_stopped(stack, started)


def test_ctrl_c_on_make_run_stops_every_process_gracefully(start_stack: Callable[..., Stack]) -> None:
    # GIVEN `make run` in a terminal, with the virtualenv already installed
    if subprocess.run(["make", "-q", "-C", str(PROJECT_ROOT), ".venv/.installed"], check=False).returncode:
        pytest.skip("make run would install .venv first")
    stack = start_stack(MAKE_RUN, workers=1)
    started = running_in_full(stack, workers=1)

    # WHEN Ctrl-C is pressed: SIGINT to make and to run_stack at once
    os.killpg(stack.process.pid, signal.SIGINT)

    # THEN every process exits, stopped once (no "again: killing the stack", which a second signal means)
    assert stack.process.wait(timeout=60) == -signal.SIGINT
    assert_all_stopped(stack, started)
    assert "killing the stack" not in stack.log_path.read_text(errors="replace")


def test_a_taken_port_ends_the_stack_at_once_with_one_line(tmp_path: Path) -> None:
    # GIVEN the API's port taken by another server
    with socket.socket() as other_server:
        other_server.bind((HOST, 0))
        other_server.listen()
        port = other_server.getsockname()[1]

        # WHEN the stack is started on it
        started = time.monotonic()
        result = subprocess.run(
            RUN_STACK,
            cwd=PROJECT_ROOT,
            env=stack_env(tmp_path, port, 1),
            capture_output=True,
            text=True,
            timeout=60,
        )

    # THEN it ends at once, non-zero, with one line naming the port and API_PORT, having started nothing
    assert result.returncode != 0
    assert time.monotonic() - started < 10
    (line,) = (result.stdout + result.stderr).splitlines()
    assert str(port) in line and "API_PORT" in line
    assert not (tmp_path / "data").exists()


def test_a_host_beyond_this_machine_ends_the_stack_at_once_with_one_line(tmp_path: Path) -> None:
    # GIVEN nothing configured: the published development token is accepted
    env = stack_env(tmp_path, free_port(), 1, API_HOST="0.0.0.0")  # noqa: S104 - the host refused

    # WHEN the stack is started on every address
    started = time.monotonic()
    result = run_in_a_session(RUN_STACK, env)

    # THEN it ends at once, non-zero, with one line naming API_HOST and API_TOKENS, having started nothing
    assert result.returncode != 0
    assert time.monotonic() - started < 10
    (line,) = (result.stdout + result.stderr).splitlines()
    assert "API_HOST" in line and "API_TOKENS" in line
    assert not (tmp_path / "data").exists()


def test_make_run_keeps_its_data_owner_only_and_its_redis_behind_a_password(
    start_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    # GIVEN a data directory made under the usual umask (022), readable by every user of the machine
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "notes.txt").write_text("left by an older checkout")
    (data_dir / "notes.txt").chmod(0o644)

    # WHEN the stack starts on it and a patient is written
    stack = start_stack(workers=1)
    wait_until(stack.serving, timeout=90, interval=0.2)
    assert stack.call("POST", "/patients", JOHN)[0] == 201
    modes = {str(p.relative_to(data_dir)): p.stat().st_mode & 0o777 for p in [data_dir, *data_dir.rglob("*")]}
    redis_url = (data_dir / "redis-url").read_text().strip()

    # THEN the directory is 0700 and every file in it 0600: the database, its WAL files, the Redis URL
    assert {"telehealth.db", "telehealth.db-wal", "telehealth.db-shm", "redis-url", "notes.txt"} <= set(modes)
    assert modes == {".": 0o700, **{name: 0o600 for name in modes if name != "."}}, modes
    # and the embedded Valkey refuses a client without the password the URL carries
    parsed = urlsplit(redis_url)
    assert parsed.password and parsed.hostname == "127.0.0.1"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=parsed.hostname, port=parsed.port).ping()
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
