"""Run a local API server in a child process, for tests and benches.

Either server takes the same options: ``keep_alive_command`` is ``python -m
scripts.local_api``, ``stock_chalice_command`` is plain ``chalice local``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from chalicelib.config.settings import PROJECT_ROOT

HOST = "127.0.0.1"


class ServerDidNotStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def keep_alive_command(port: int, stage: str = "dev", *, autoreload: bool = False) -> list[str]:
    return [sys.executable, "-m", "scripts.local_api", *_local_options(port, stage, autoreload)]


def stock_chalice_command(port: int, stage: str = "dev", *, autoreload: bool = False) -> list[str]:
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    return [chalice, "local", *_local_options(port, stage, autoreload)]


def _local_options(port: int, stage: str, autoreload: bool) -> list[str]:
    reload_option = "--autoreload" if autoreload else "--no-autoreload"
    return ["--host", HOST, "--port", str(port), "--stage", stage, reload_option]


@contextlib.contextmanager
def running_server(
    command: list[str], port: int, env: Mapping[str, str], log_path: Path, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` and yield once ``port`` accepts connections; stop it (and its children) after.

    Its output goes to ``log_path``, quoted in the error if it does not start.
    """
    with open(log_path, "wb") as log:
        # A session of its own, so the autoreload worker process stops with its parent.
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_accepting(process, port, timeout, log_path)
        yield process
    finally:
        _stop(process)


def _wait_until_accepting(
    process: subprocess.Popen[bytes], port: int, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    output = log_path.read_text(errors="replace")
    raise ServerDidNotStart(f"{process.args!r} did not serve on port {port}:\n{output}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
