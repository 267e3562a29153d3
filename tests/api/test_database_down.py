"""A database that cannot be reached at all (the server down, or failing over) is a 503
``database_unavailable`` with ``Retry-After`` on every route that needs it, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chalice.test
import pytest

from chalicelib.bootstrap import reset_for_tests
from tests.helpers.api import assert_error
from tests.helpers.environment import configure_environment
from tests.helpers.tokens import AUTH, JSON_AUTH, SUITE_TOKENS


@pytest.fixture
def client_of_a_down_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    # A PostgreSQL URL whose socket directory holds no server: every connection attempt is refused
    # at once, as when the server is down, and the test needs no server of its own.
    url = f"postgresql://postgres@/telehealth?host={tmp_path}"
    configure_environment(monkeypatch, DATABASE_URL=url, API_TOKENS=SUITE_TOKENS)
    from app import app

    with chalice.test.Client(app, stage_name="dev") as client:
        yield client
    reset_for_tests()


def test_every_database_route_answers_503_database_unavailable_with_retry_after(
    client_of_a_down_database: Any,
) -> None:
    client = client_of_a_down_database

    responses = [
        client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"name": "A", "email": "a@x.org"})),
        client.http.put("/patients/1", headers=JSON_AUTH, body=json.dumps({"name": "B"})),
        client.http.delete("/patients/1", headers=AUTH),
        client.http.get("/patients/1", headers=AUTH),
        client.http.get("/patients", headers=AUTH),
        client.http.get("/notifications", headers=AUTH),
        client.http.get("/health/notifications", headers=AUTH),  # not audited: was a 500
    ]

    for response in responses:
        # Nor can the audit row be written: the answer stays withheld, and says why and when to retry.
        assert_error(response, 503, "database_unavailable")
        assert int(response.headers["Retry-After"]) >= 1
