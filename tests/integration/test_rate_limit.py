"""The per-principal rate limit against a real Redis: 429 with Retry-After, refill, failing open, and
refusals counted in the audit trail (one row per principal and minute).

Redis is TEST_REDIS_URL or an embedded Valkey server. Every test keeps its
buckets under a key prefix of its own, so runs sharing a Redis never meet.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import chalice.test
import pytest
from sqlalchemy import event

from chalicelib import bootstrap
from chalicelib.access import rate_limit
from chalicelib.access.rate_limit import enforce_rate_limit
from chalicelib.audit.service import settle_refusal_counts
from chalicelib.bootstrap import reset_for_tests
from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.errors import RateLimited
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import utc_now
from scripts.api_process import free_port
from scripts.embedded_services import start_embedded_redis
from tests.helpers.api import assert_documented, get_document
from tests.helpers.environment import configure_environment

TOKENS = "alice:alice-token,bob:bob-token"
SESSION_PREFIX = f"telehealth-test:{uuid.uuid4().hex[:12]}:"


def bearer(principal: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {principal}-token"}


# --- Redis for the rate limit (kept apart from the notification fixtures in conftest) ---------


@pytest.fixture(scope="session")
def rate_limit_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import os

    import redis

    configured = os.environ.get("TEST_REDIS_URL")
    server = None if configured else start_embedded_redis(tmp_path_factory.mktemp("rate-limit-redis"))
    url = configured or server.connection_url
    yield url
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(match=f"{SESSION_PREFIX}*"):
            client.delete(key)
    if server is not None:
        server.stop()


@pytest.fixture
def limited(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, rate_limit_redis_url: str
) -> Iterator[Callable[..., chalice.test.Client]]:
    """Call with a rate (and any other settings) to get a test client of the API so limited."""
    from app import app

    def configure(per_minute: int, burst: int, **env: str) -> chalice.test.Client:
        settings = {
            "DATABASE_URL": sqlite_url,
            "API_TOKENS": TOKENS,
            "REDIS_URL": rate_limit_redis_url,
            "RATE_LIMIT_PER_MINUTE": str(per_minute),
            "RATE_LIMIT_BURST": str(burst),
            "RATE_LIMIT_KEY_PREFIX": f"{SESSION_PREFIX}{uuid.uuid4().hex[:8]}:",
            **env,
        }
        configure_environment(monkeypatch, **settings)
        # A stage .chalice/config.json does not name: the dev stage's RATE_LIMIT_PER_MINUTE=0
        # would override these settings on every request.
        return chalice.test.Client(app, stage_name="rate-limit-test")

    yield configure
    reset_for_tests()


def list_patients(client: Any, principal: str = "alice") -> Any:
    return client.http.get("/patients", headers=bearer(principal))


def test_over_the_limit_is_a_429_with_retry_after(limited: Callable[..., Any]) -> None:
    client = limited(per_minute=1, burst=3)

    statuses = [list_patients(client).status_code for _ in range(3)]
    refused = list_patients(client)

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert {k: v for k, v in refused.json_body.items() if k != "request_id"} == {
        "code": "rate_limited",
        "message": f"Too many requests: retry after {refused.headers['Retry-After']} s",
    }
    # One token per minute: the next one is most of a minute away.
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"
    assert_documented(get_document(client), "/patients", "get", refused)


def test_every_protected_route_counts_and_public_ones_do_not(limited: Callable[..., Any]) -> None:
    client = limited(per_minute=1, burst=2)
    json_auth = {**bearer("alice"), "Content-Type": "application/json"}

    for _ in range(5):
        assert client.http.get("/openapi.json").status_code == 200
    assert client.http.post("/patients", headers=json_auth, body=json.dumps({"name": "x"})).status_code == 400
    assert client.http.get("/patients/1", headers=bearer("alice")).status_code == 404

    assert client.http.delete("/patients/1", headers=bearer("alice")).status_code == 429
    assert client.http.put("/patients/1", headers=json_auth, body="{}").status_code == 429


def refusal_rows() -> list[dict[str, Any]]:
    """The audit trail's rows of rate-limited refusals, oldest first."""
    from sqlalchemy import select

    from chalicelib.storage.database import get_engine
    from chalicelib.storage.models import AuditEvent

    table = AuditEvent.__table__
    with get_engine().connect() as connection:
        rows = connection.execute(select(table).where(table.c.status == 429).order_by(table.c.id))
        return [dict(row._mapping) for row in rows]


def settle_ended_minutes(minutes_later: int = 2) -> int:
    """What the relay does every minute: the counts of ended minutes, from Redis into the trail."""
    settings = bootstrap.settings()
    assert settings.redis_url is not None
    later = utc_now() + timedelta(minutes=minutes_later)
    return settle_refusal_counts(UnitOfWork(), settings.redis_url, settings.rate_limit, later)


def test_a_flood_of_refusals_is_counted_in_one_audit_row_per_principal_and_minute(
    limited: Callable[..., Any],
) -> None:
    # GIVEN a bucket of 2 that refills once a minute
    client = limited(per_minute=1, burst=2)

    # WHEN alice sends 50 requests and bob 5, across routes, and the minute is settled
    alice = [list_patients(client).status_code for _ in range(25)]
    alice += [client.http.get("/patients/1", headers=bearer("alice")).status_code for _ in range(25)]
    bob = [list_patients(client, "bob").status_code for _ in range(5)]
    settle_ended_minutes()

    # THEN each principal's refusals are counted in one row per UTC minute (two if the flood
    # crossed a minute), never one row per refusal, and the count is exact
    assert (alice.count(429), bob.count(429)) == (48, 3)
    rows = refusal_rows()
    for principal, refused in (("alice", 48), ("bob", 3)):
        theirs = [row for row in rows if row["principal"] == principal]
        assert sum(row["count"] for row in theirs) == refused
        assert 1 <= len(theirs) <= 2
        assert len({row["window_start"] for row in theirs}) == len(theirs)
        assert {(row["action"], row["patient_id"]) for row in theirs} == {("request.rate_limited", None)}
        assert all(
            row["occurred_at"].replace(second=0, microsecond=0) == row["window_start"] for row in theirs
        )


def test_300_refusals_cost_at_most_two_database_statements(limited: Callable[..., Any]) -> None:
    # GIVEN a bucket of 2, and every statement sent to the database counted
    client = limited(per_minute=1, burst=2)
    assert [list_patients(client).status_code for _ in range(2)] == [200, 200]
    statements: list[str] = []
    event.listen(get_engine(), "before_cursor_execute", lambda *args: statements.append(args[2]))

    # WHEN 300 more requests are refused, and the relay then settles the minute
    refused = [list_patients(client).status_code for _ in range(300)]
    during = list(statements)
    settle_ended_minutes()

    # THEN the minute's first refusal wrote its row, the settlement its count, and nothing else did
    writes = [statement for statement in statements if not statement.startswith(("BEGIN", "COMMIT"))]
    assert refused == [429] * 300
    assert len(writes) <= 2, writes
    assert len([s for s in during if not s.startswith(("BEGIN", "COMMIT"))]) <= 1
    assert sum(row["count"] for row in refusal_rows()) == 300


def test_refusals_in_a_new_minute_start_a_new_row(
    limited: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = limited(per_minute=1, burst=1)
    assert [list_patients(client).status_code for _ in range(3)] == [200, 429, 429]

    # WHEN the clock has moved to the next minute and alice is refused again
    next_minute = utc_now() + timedelta(minutes=1)
    monkeypatch.setattr(rate_limit, "utc_now", lambda: next_minute)
    assert list_patients(client).status_code == 429
    settle_ended_minutes(minutes_later=3)

    # THEN a row of its own counts it, and the earlier minute keeps its two
    rows = refusal_rows()
    assert [row["count"] for row in rows] == [2, 1]
    assert rows[0]["window_start"] < rows[1]["window_start"]


def test_a_settled_minute_is_not_settled_twice(limited: Callable[..., Any]) -> None:
    client = limited(per_minute=1, burst=1)
    assert [list_patients(client).status_code for _ in range(4)] == [200, 429, 429, 429]

    assert settle_ended_minutes() == 1
    assert settle_ended_minutes() == 0
    assert [row["count"] for row in refusal_rows()] == [3]


def test_each_principal_has_its_own_bucket(limited: Callable[..., Any]) -> None:
    client = limited(per_minute=1, burst=2)

    alice = [list_patients(client, "alice").status_code for _ in range(3)]
    bob = [list_patients(client, "bob").status_code for _ in range(2)]

    assert alice == [200, 200, 429]
    assert bob == [200, 200]


def test_the_bucket_refills_over_time(limited: Callable[..., Any]) -> None:
    # 120 a minute: a token every half second.
    client = limited(per_minute=120, burst=1)

    assert list_patients(client).status_code == 200
    refused = list_patients(client)
    time.sleep(0.55)

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert list_patients(client).status_code == 200


def test_concurrent_requests_never_overspend_the_bucket(limited: Callable[..., Any]) -> None:
    # GIVEN a bucket of 5 and no refill to speak of, WHEN 40 requests race for it from 8 threads,
    # THEN exactly 5 get through: the script reads and writes the bucket in one atomic step.
    limited(per_minute=1, burst=5)
    limit, redis_url = bootstrap.settings().rate_limit, bootstrap.settings().redis_url
    enforce_rate_limit("warm-up", limit, redis_url)  # connect once, so every racer talks to Redis

    def attempt(_: int) -> bool:
        try:
            enforce_rate_limit("racer", limit, redis_url)
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = sum(pool.map(attempt, range(40)))

    assert admitted == 5


def test_a_redis_that_refuses_connections_lets_requests_through(
    limited: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(per_minute=1, burst=1, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    with caplog.at_level(logging.WARNING, logger="telehealth.rate_limit"):
        statuses = [list_patients(client).status_code for _ in range(5)]

    assert statuses == [200] * 5
    # One line for the outage, not one per request: Redis is left alone for a few seconds.
    warnings = [r.getMessage() for r in caplog.records if r.name == "telehealth.rate_limit"]
    assert warnings == ["rate limiter unavailable (ConnectionError): requests are not limited for 5 s"]
    assert "alice" not in caplog.text


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_redis_that_never_answers_lets_requests_through(
    limited: Callable[..., Any], silent_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(per_minute=1, burst=1, REDIS_URL=silent_redis)

    with caplog.at_level(logging.WARNING, logger="telehealth.rate_limit"):
        statuses = [list_patients(client).status_code for _ in range(3)]

    assert statuses == [200] * 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "telehealth.rate_limit"]
    assert warnings == ["rate limiter unavailable (TimeoutError): requests are not limited for 5 s"]


def test_a_limit_without_redis_lets_requests_through_and_says_so_once(
    limited: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(per_minute=1, burst=1, REDIS_URL="")

    with caplog.at_level(logging.WARNING, logger="telehealth.rate_limit"):
        statuses = [list_patients(client).status_code for _ in range(3)]

    assert statuses == [200] * 3
    assert [r.getMessage() for r in caplog.records if r.name == "telehealth.rate_limit"] == [
        "RATE_LIMIT_PER_MINUTE is set but REDIS_URL is not: requests are not limited"
    ]


def test_a_disabled_limit_never_calls_redis(
    limited: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = limited(per_minute=0, burst=0, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    with caplog.at_level(logging.WARNING, logger="telehealth.rate_limit"):
        statuses = [list_patients(client).status_code for _ in range(3)]

    assert statuses == [200] * 3
    assert not [r for r in caplog.records if r.name == "telehealth.rate_limit"]


def test_importing_the_app_does_not_import_redis(sqlite_url: str, rate_limit_redis_url: str) -> None:
    probe = "import sys, app; print(sorted(m for m in ('redis', 'jwt', 'cryptography') if m in sys.modules))"
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_STAGE": "dev",
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": rate_limit_redis_url,
        "RATE_LIMIT_PER_MINUTE": "60",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"
