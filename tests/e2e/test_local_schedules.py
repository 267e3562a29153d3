"""The app's scheduled functions on the local servers, which stock ``chalice local`` would never run.

``POST /__scheduled/<name>`` fires one now (as ``wrangler dev``'s ``/__scheduled`` does); a
background thread fires each at its ``Rate``. The scenario both times: a change's message is lost
with Redis, and the relay hands the overdue notification off again.
"""

from __future__ import annotations

import http.client
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from scripts.api_process import HOST, free_port, keep_alive_command, running_server, stock_chalice_command
from tests.helpers.processes import server_environment
from tests.helpers.waiting import call_json, parse_json_lines, wait_until

RELAY = "relay_notifications"

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}
# What a developer's curl sends to fire one (README): a web page can send no such header unasked.
FIRE = {"X-Telehealth-Trigger": "1"}


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    return call_json(method, f"http://{HOST}:{port}{path}", body, headers)


def broker_messages(redis_url: str) -> list[str]:
    with redis.Redis.from_url(redis_url) as broker:
        return [json.loads(raw)["headers"]["id"] for raw in broker.lrange("celery", 0, -1)]


def lose_the_message(database: Path, redis_url: str) -> None:
    """Redis restarted empty, and the notification's relay delay has passed."""
    with redis.Redis.from_url(redis_url) as broker:
        broker.flushdb()
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE notifications SET next_attempt_at = '2000-01-01 00:00:00.000000'")


def status_of(database: Path, notification_id: str) -> str:
    with sqlite3.connect(database) as connection:
        (status,) = connection.execute(
            "SELECT status FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()
    return str(status)


@pytest.fixture
def local_server(sqlite_template: Path, tmp_path: Path, redis_url: str) -> Callable[..., Any]:
    """Start a local server (``scripts.local_api`` or stock ``chalice local``) on its own database."""
    database = tmp_path / "telehealth.db"
    shutil.copy(sqlite_template, database)
    log = tmp_path / "server.log"

    def start(command: Callable[[int], list[str]], **settings: str) -> Any:
        port = free_port()
        env = {
            **server_environment(f"sqlite:///{database}"),
            "REDIS_URL": redis_url,
            "NOTIFY_RELAY_DELAY": "1",
            **settings,
        }
        return running_server(command(port), port, env, log), port, database, log

    return start


def test_the_trigger_route_runs_the_relay_now_and_answers_what_it_returned(
    local_server: Callable[..., Any], redis_url: str
) -> None:
    # GIVEN make run's server, whose timer would not fire within the test (an hour)
    server, port, database, _log = local_server(keep_alive_command, NOTIFY_RELAY_INTERVAL="3600")
    with server:
        status, created = request(
            port, "POST", "/patients", {"name": "Ann", "email": "ann@example.com"}, AUTH
        )
        assert status == 201
        notification_id = created["notification_id"]
        lose_the_message(database, redis_url)

        # WHEN the relay is fired through the trigger route
        fired = request(port, "POST", f"/__scheduled/{RELAY}", headers=FIRE)
        unknown = request(port, "POST", "/__scheduled/no_such_function", headers=FIRE)
        not_a_trigger = request(port, "GET", f"/__scheduled/{RELAY}", headers=FIRE)

    # THEN it ran once with EventBridge's event: the notification is handed off again, once
    status, answer = fired
    assert status == 200 and answer["function"] == RELAY
    result = answer["result"]
    assert result.pop("oldest_queued_age_seconds") >= 0  # the one just handed off again
    # no worker runs here: it waits in the worker's queue
    assert result == {"handed_off": 1, "oldest_pending_age_seconds": None, "queue_length": 1}
    assert broker_messages(redis_url) == [notification_id]
    assert status_of(database, notification_id) == "queued"
    # and only POST to a known name runs anything; refusals in our error shape
    assert unknown[0] == 404 and unknown[1]["code"] == "scheduled_function_not_found"
    assert "purge_expired_records, relay_notifications" in unknown[1]["message"]
    assert not_a_trigger[0] == 404 and not_a_trigger[1]["code"] == "route_not_found"


def test_stock_chalice_local_fires_the_relay_on_its_own_at_its_rate(
    local_server: Callable[..., Any], redis_url: str
) -> None:
    # GIVEN plain chalice local with a relay every second (sub-minute rates exist only locally)
    server, port, database, log = local_server(stock_chalice_command, NOTIFY_RELAY_INTERVAL="1")
    with server:
        status, created = request(port, "POST", "/patients", {"name": "Bo", "email": "bo@example.com"}, AUTH)
        assert status == 201
        notification_id = created["notification_id"]

        # WHEN its message is lost with Redis
        lose_the_message(database, redis_url)

        # THEN the timer's next run hands it off again, with nobody asking
        wait_until(lambda: broker_messages(redis_url) == [notification_id], timeout=30)
        # (its log line follows the hand-off: wait for it before stopping the server)
        wait_until(lambda: schedule_runs(log) != [], timeout=30)
    runs = schedule_runs(log)
    assert {line["function"] for line in runs} == {RELAY}  # the hourly purge has not come yet
    assert all(line["message"] == "scheduled function ran" for line in runs)


def raw_post(port: int, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """A POST with exactly these headers, Host included (a browser sends the name it resolved)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", path, body=b"x", headers={"Content-Type": "text/plain", **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    "command", [keep_alive_command, stock_chalice_command], ids=["local-api", "chalice-local"]
)
def test_the_trigger_route_answers_a_developers_command_and_no_web_page(
    local_server: Callable[..., Any], command: Callable[[int], list[str]]
) -> None:
    # GIVEN a local server whose relay timer would not fire within the test
    server, port, _database, log = local_server(command, NOTIFY_RELAY_INTERVAL="3600")
    here = f"127.0.0.1:{port}"
    with server:
        # WHEN a page in the developer's browser tries: a cross-site "simple" POST (text/plain, Origin
        # sent), the same with the header, a DNS-rebinding page (127.0.0.1 under its own name), and a
        # request without the header; then the developer's own curl
        simple = raw_post(port, f"/__scheduled/{RELAY}", {"Host": here, "Origin": "https://evil.example"})
        with_origin = raw_post(port, f"/__scheduled/{RELAY}", {"Host": here, "Origin": "null", **FIRE})
        rebound = raw_post(port, f"/__scheduled/{RELAY}", {"Host": f"evil.example:{port}", **FIRE})
        no_header = raw_post(port, f"/__scheduled/{RELAY}", {"Host": f"localhost:{port}"})
        curl = raw_post(port, f"/__scheduled/{RELAY}", {"Host": here, **FIRE})
        wait_until(lambda: schedule_runs(log) != [], timeout=30)

    # THEN every page's request is refused in our shape, and only the developer's ran the relay, once
    for refused in (simple, with_origin, rebound):
        assert refused[0] == 403 and refused[1]["code"] == "trigger_not_local", refused
    assert no_header[0] == 403 and no_header[1]["code"] == "trigger_header_missing", no_header
    assert curl[0] == 200 and curl[1]["function"] == RELAY, curl
    assert len(schedule_runs(log)) == 1


def schedule_runs(log: Path) -> list[dict[str, Any]]:
    return [
        line for line in parse_json_lines(log.read_text()) if line.get("logger") == "telehealth.schedules"
    ]


def test_the_trigger_route_is_no_route_of_the_app(client: Any) -> None:
    # The app (what Lambda runs) knows nothing of it: only the local servers answer it.
    assert client.http.post(f"/__scheduled/{RELAY}").status_code == 404
