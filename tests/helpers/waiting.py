"""Waiting for a condition, requests at the same moment, real-socket calls, and JSON log lines."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest


def wait_until(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; fail with a clear message after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def run_together(count: int, request: Any) -> list[Any]:
    """Start ``count`` calls of ``request(i)`` at the same moment and collect their results."""
    barrier = threading.Barrier(count)

    def call(i: int) -> Any:
        barrier.wait()
        return request(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@contextmanager
def relay_running(app: Any, every: float = 0.5) -> Iterator[None]:
    """The app's relay, a scheduled function, invoked with EventBridge's event every ``every`` seconds
    in a thread of this process until the block ends (what the local server's timer does)."""
    from chalicelib.http.schedules import scheduled_event

    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            app.handler_map["relay_notifications"](scheduled_event("relay_notifications"), None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def call_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    """One request to a server of the test over a real socket: its status and decoded JSON answer,
    error statuses included (a body goes as JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of ``text`` that are JSON objects, decoded."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines
