"""A real ``chalice local`` server in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib.config.settings import PROJECT_ROOT

STARTUP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chalice_local(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Serve the API on a free port with ``env`` added to this environment; yield its base URL."""
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
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"chalice local exited: {log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"chalice local did not answer in {STARTUP_TIMEOUT_S}s: {log_path.read_text()}")
