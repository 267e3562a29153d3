"""GET /health: reachability and notification counts, without a token, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.bootstrap import reset_for_tests
from scripts.api_process import free_port
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import JSON_AUTH


def health(client: Any) -> Any:
    return client.http.get("/health")


def test_healthy_without_redis_needs_no_token(client: Any) -> None:
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"name": "A", "email": "a@example.com"}))

    response = health(client)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    # No REDIS_URL here: the create's notification waits in the outbox as pending.
    assert response.json_body == {
        "status": "ok",
        "database": "ok",
        "redis": "not_configured",
        "notifications": {"pending": 1, "failed": 0},
    }
    assert "a@example.com" not in response.body.decode()


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
    assert response.json_body["notifications"] == {"pending": None, "failed": None}
