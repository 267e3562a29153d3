"""GET /health: reachability without a token, checked at most once per period; the notification counts
behind a scope. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import event

from chalicelib.bootstrap import reset_for_tests
from chalicelib.health.service import CHECK_SECONDS
from chalicelib.storage.database import get_engine
from scripts.api_process import free_port
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import AUTH, JSON_AUTH, OTHER_TOKEN


def health(client: Any) -> Any:
    return client.http.get("/health")


def test_healthy_without_redis_needs_no_token(client: Any) -> None:
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"name": "A", "email": "a@example.com"}))

    response = health(client)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json_body == {"status": "ok", "database": "ok", "redis": "not_configured"}
    assert "a@example.com" not in response.body.decode()


def test_the_notification_counts_need_a_token_with_the_audit_scope(client: Any, two_principals: Any) -> None:
    # GIVEN a create whose notification waits in the outbox (no REDIS_URL here: pending)
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"name": "A", "email": "a@example.com"}))

    # THEN anyone learns nothing of it, a token without audit:read is refused, an operator's is answered
    assert client.http.get("/health/notifications").status_code == 401
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}  # patients:read and :write, not audit:read
    assert client.http.get("/health/notifications", headers=other).status_code == 403
    counts = client.http.get("/health/notifications", headers=AUTH)
    assert (counts.status_code, counts.json_body) == (200, {"pending": 1, "failed": 0})


def test_a_burst_of_anonymous_calls_costs_one_database_check_per_period(client: Any) -> None:
    # GIVEN a process that has not checked yet, and a count of the statements it sends
    statements: list[str] = []
    event.listen(get_engine(), "before_cursor_execute", lambda *args: statements.append(args[2]))

    # WHEN 600 anonymous calls arrive within one check period
    answers = [health(client) for _ in range(600)]

    # THEN all are answered, from one check of the database
    assert {answer.status_code for answer in answers} == {200}
    assert len(statements) <= 1, statements


def test_the_check_is_made_again_once_its_period_is_over(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert health(client).json_body["database"] == "ok"
    statements: list[str] = []
    event.listen(get_engine(), "before_cursor_execute", lambda *args: statements.append(args[2]))
    later = time.monotonic() + CHECK_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)

    health(client)

    assert len(statements) == 1


def test_redis_reachable_and_unreachable(
    client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_for_tests()
    assert health(client).json_body["redis"] == "ok"

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_for_tests()
    down = health(client)

    assert down.status_code == 200
    assert down.json_body["redis"] == "unreachable" and down.json_body["database"] == "ok"


@sqlite_only
def test_database_down_is_503(client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{blocker}/telehealth.db")
    reset_for_tests()

    response = health(client)

    assert response.status_code == 503
    assert response.json_body["status"] == "unavailable"
    assert response.json_body["database"] == "unreachable"
