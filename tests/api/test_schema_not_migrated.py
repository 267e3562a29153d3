"""A reachable database without our schema, or behind the newest migration, says so: 503
``schema_not_migrated`` naming ``make migrate``, and /health "database": "not_migrated"."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chalice.test
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from chalicelib.bootstrap import reset_for_tests
from chalicelib.storage.migrate import alembic_config, upgrade_database
from chalicelib.storage.schema import NEWEST_REVISION
from tests.helpers.api import assert_error
from tests.helpers.databases import create_postgres_database, drop_postgres_database
from tests.helpers.environment import configure_environment
from tests.helpers.tokens import AUTH, JSON_AUTH, SUITE_TOKENS

PREVIOUS_REVISION = f"{int(NEWEST_REVISION) - 1:04d}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database the server reaches, with no table at all."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        sqlite3.connect(path).close()
        yield f"sqlite:///{path}"
        return
    server_url = str(request.getfixturevalue("postgres_server_url"))
    url = create_postgres_database(server_url)
    yield url
    reset_for_tests()
    drop_postgres_database(server_url, url)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], chalice.test.Client]]:
    """The app in-process on a given database, with the suite's token."""
    clients: list[chalice.test.Client] = []

    def start(database_url: str) -> chalice.test.Client:
        from app import app

        configure_environment(monkeypatch, DATABASE_URL=database_url, API_TOKENS=SUITE_TOKENS)
        clients.append(chalice.test.Client(app, stage_name="dev"))
        return clients[-1]

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    reset_for_tests()


def assert_not_migrated(response: Any) -> None:
    assert_error(response, 503, "schema_not_migrated")
    assert "make migrate" in response.json_body["message"]


def test_a_database_without_tables_answers_schema_not_migrated(
    serve: Callable[[str], chalice.test.Client], empty_database_url: str
) -> None:
    # GIVEN a database the server reaches, where no migration ran
    client = serve(empty_database_url)

    # WHEN a patient is written and read, and health is asked
    created = client.http.post(
        "/patients", headers=JSON_AUTH, body=json.dumps({"name": "A", "email": "a@x.org"})
    )
    listed = client.http.get("/patients", headers=AUTH)
    read = client.http.get("/patients/1", headers=AUTH)
    notifications = client.http.get("/notifications", headers=AUTH)
    health = client.http.get("/health")

    # THEN each says the schema is missing (not that the database is unreachable), and how to fix it
    for response in (created, listed, read, notifications):
        assert_not_migrated(response)
    assert health.status_code == 503
    assert (health.json_body["status"], health.json_body["database"]) == ("unavailable", "not_migrated")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_database_behind_the_newest_migration_is_not_healthy(
    serve: Callable[[str], chalice.test.Client], database_url: str
) -> None:
    # GIVEN the suite's migrated database, its newest migration undone
    upgrade_database(database_url)
    command.downgrade(alembic_config(database_url), PREVIOUS_REVISION)
    try:
        client = serve(database_url)

        # WHEN health is asked
        health = client.http.get("/health")
    finally:
        upgrade_database(database_url)

    # THEN it names the schema, not reachability
    assert health.status_code == 503
    assert health.json_body["database"] == "not_migrated"


def test_the_newest_revision_is_alembic_s_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))

    assert scripts.get_current_head() == NEWEST_REVISION
    # schema_is_behind compares revisions as strings: each is four digits
    assert all(len(script.revision) == 4 and script.revision.isdigit() for script in scripts.walk_revisions())
