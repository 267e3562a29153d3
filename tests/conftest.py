"""Real databases for the suite: SQLite files and PostgreSQL.

PostgreSQL is the server named by TEST_POSTGRES_URL (CI points it at the
machine's own) or, without it, an embedded server installed from PyPI. Each
test session works in a database of its own, so parallel runs never meet.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import chalice.test  # noqa: F401  (loaded before app: see chalicelib.gateway_responses)
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from chalicelib.config import get_settings, normalize_database_url
from chalicelib.database import get_engine, reset_engine
from chalicelib.schema import upgrade_database
from scripts.embedded_services import start_embedded_postgres

TEST_TOKEN = "test-token-for-suite"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
TRUNCATE_TABLES = ("patients", "notifications")


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("TEST_POSTGRES_URL")
    if configured:
        return normalize_database_url(configured)
    server = start_embedded_postgres(tmp_path_factory.mktemp("embedded-postgres"))
    return normalize_database_url(server.get_uri("postgres"))


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server, dropped afterwards."""
    name = f"telehealth_test_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(postgres_server_url).set(drivername="postgresql")
    libpq = admin_url.render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_database(url)
    yield url
    reset_engine()
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "telehealth.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    url = str(request.getfixturevalue("postgres_url"))
    return url


def configure_environment(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Point the process's settings at ``env`` and forget every cached engine."""
    for key in ("DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    reset_engine()


@pytest.fixture
def configured_app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """Settings for the API on ``database_url`` with the suite's token; tables start empty."""
    configure_environment(
        monkeypatch, DATABASE_URL=database_url, APP_STAGE="dev", API_TOKENS=f"suite:{TEST_TOKEN}"
    )
    if database_url.startswith("postgresql"):
        with get_engine().begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TRUNCATE_TABLES)} RESTART IDENTITY CASCADE"))
    yield database_url
    get_settings.cache_clear()
    reset_engine()


@pytest.fixture
def client(configured_app: str) -> Iterator[chalice.test.Client]:
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client
