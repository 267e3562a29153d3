"""Servers of the test in subprocesses: a Celery worker and ``chalice local``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT
from scripts.api_process import free_port
from tests.helpers.waiting import parse_json_lines, wait_until


def server_environment(database_url: str) -> dict[str, str]:
    """The test's environment for a server, with a shell APP_STAGE that config.json must override.

    Without API_TOKENS only the dev stage accepts the development token, so a
    request that passes with it shows the stage's APP_STAGE=dev was applied.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "API_TOKEN_SHA256", "REDIS_URL")}
    return {**env, "DATABASE_URL": database_url, "APP_STAGE": "set-by-the-shell"}


class WorkerProcess:
    """``celery -A local_worker worker`` in a subprocess, on the test's settings; its log in a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WorkerProcess:
        command = [sys.executable, "-m", "celery", "-A", "local_worker", "worker", "--pool=threads"]
        command += ["--concurrency=4", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", f"--hostname=test-{uuid.uuid4().hex[:8]}@%h"]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # A session of its own: kill() must also reach the processes the worker forks.
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(lambda: " ready." in self.log()[offset:] or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and everything it started, as a crash of its machine would."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def json_lines(self) -> list[dict[str, Any]]:
        """The worker's log lines (ours and Celery's); the banner Celery prints is not one of them."""
        return parse_json_lines(self.log())

    def sent_lines(self, notification_id: str) -> list[dict[str, Any]]:
        """The log provider's line for each channel delivered."""
        return [
            line
            for line in self.json_lines()
            if line["message"] == "notification sent" and line.get("notification_id") == notification_id
        ]


CHALICE_LOCAL_STARTUP_TIMEOUT_S = 30


@contextmanager
def chalice_local(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real ``chalice local`` on a free port with ``env`` added to this environment; yield its base URL."""
    port = free_port()
    chalice = str(Path(sys.executable).with_name("chalice"))
    command = [
        chalice,
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--stage",
        "dev",
        "--no-autoreload",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_serving(server, base_url, log_path)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_serving(server: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + CHALICE_LOCAL_STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"chalice local exited: {log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(
        f"chalice local did not answer in {CHALICE_LOCAL_STARTUP_TIMEOUT_S}s: {log_path.read_text()}"
    )


def run_in_a_session(
    command: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``command`` run to its end in a session of its own; past ``timeout`` every process of that
    session is killed (a server that should have refused to start leaves nothing behind) and the
    test fails with its output."""
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{command!r} still ran after {timeout} s:\n{stdout}{stderr}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
