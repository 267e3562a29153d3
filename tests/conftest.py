"""Real databases and Redis for the suite: SQLite files, PostgreSQL, Redis and Celery workers.

PostgreSQL is the server named by TEST_POSTGRES_URL (CI points it at the
machine's own) or, without it, an embedded server installed from PyPI. Each
test session works in a database of its own, so parallel runs never meet.
Redis likewise: TEST_REDIS_URL or an embedded Valkey server, each session in a
Redis database number of its own.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chalice.test
import pytest
from sqlalchemy import text

from chalicelib.bootstrap import reset_for_tests
from chalicelib.config.settings import normalize_database_url
from chalicelib.observability.structured_logging import json_log_handler
from chalicelib.storage.database import get_engine
from chalicelib.storage.migrate import upgrade_database
from local_server.gateway import emulate_in_local_gateway
from scripts.embedded_services import start_embedded_postgres, start_embedded_redis
from tests.helpers.databases import create_postgres_database, drop_postgres_database
from tests.helpers.environment import configure_environment
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import OTHER_TOKEN, SUITE_TOKENS
from tests.helpers.waiting import parse_json_lines

# The suite runs under the dev stage, said here: APP_STAGE has no default (a missing one refuses to
# start), and modules such as test_fuzz_openapi import app while they are collected.
os.environ["APP_STAGE"] = "dev"
# chalice.test.Client's gateway answers as our API Gateway does (local_server.gateway), as under
# chalice local; nothing else of the local servers (timers, request handler) is wanted in-process.
emulate_in_local_gateway()

TRUNCATE_TABLES = ("patients", "notifications", "idempotency_keys", "audit_events", "audit_disclosures")


# --- Tiers ---------------------------------------------------------------------------------------
# Each test's markers come from where it lives and what it uses, so a new test lands in its tier by
# itself. `make test-fast` runs what carries none: unit and in-process API tests on SQLite.

TESTS_ROOT = Path(__file__).resolve().parent
TIER_OF_DIRECTORY = {"integration": "integration", "e2e": "e2e", "deploy": "deploy"}
TIERS_OF_FIXTURE = {
    "postgres_server_url": ("postgres",),
    "postgres_url": ("postgres",),
    "redis_database_url": ("redis",),
    "redis_url": ("redis",),
    "rate_limit_redis_url": ("redis",),
    "celery_worker": ("worker", "redis"),
    "browser": ("browser",),
}
# What a test under tests/unit never needs: a server of its own is integration's, or e2e's.
NOT_IN_UNIT = {"postgres", "redis", "worker", "browser"}


def tiers_of(item: pytest.Item) -> set[str]:
    tiers = {tier for name in getattr(item, "fixturenames", ()) for tier in TIERS_OF_FIXTURE.get(name, ())}
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgresql" in callspec.params.values():
        tiers.add("postgres")  # database_url and its kind open PostgreSQL only for this parameter
    with contextlib.suppress(ValueError):
        directory = item.path.resolve().relative_to(TESTS_ROOT).parts[0]
        tiers.update([TIER_OF_DIRECTORY[directory]] if directory in TIER_OF_DIRECTORY else [])
    return tiers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        tiers = tiers_of(item)
        for tier in sorted(tiers):
            item.add_marker(tier)
        if item.path.resolve().is_relative_to(TESTS_ROOT / "unit") and tiers & NOT_IN_UNIT:
            misplaced.append(f"{item.nodeid} ({', '.join(sorted(tiers & NOT_IN_UNIT))})")
    if misplaced:
        raise pytest.UsageError(
            "tests/unit needs no server; move these to tests/integration:\n  " + "\n  ".join(misplaced)
        )


PROCESS_ENVIRON = os.environ


@pytest.fixture(autouse=True)
def ctrl_c_not_ignored(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give every test a process whose SIGINT is not ignored, and name a test that leaves it ignored.

    An ignored signal stays ignored across exec: every process a test starts (``make run`` in the
    Ctrl-C tests) would ignore Ctrl-C. Under pytest-xdist, something run in process left it
    ignored in each worker once (after a first API test; not traced yet): the warning names where.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        warnings.warn(f"{request.node.nodeid} left SIGINT ignored; restored", stacklevel=1)


@pytest.fixture(autouse=True)
def process_environ_restored() -> Iterator[None]:
    """Give every test the process's real ``os.environ`` back.

    chalice.test.Client swaps ``os.environ`` for a dict during each request and
    swaps the previous object back after; concurrent requests can leave that
    dict in place, and then neither monkeypatch nor subprocesses see the real
    environment again.
    """
    yield
    if os.environ is not PROCESS_ENVIRON:
        os.environ = PROCESS_ENVIRON  # noqa: B003


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get("TEST_POSTGRES_URL")
    if configured:
        yield normalize_database_url(configured)
        return
    # Not under pytest's basetemp: another pytest run on the machine prunes old basetemps.
    data_dir = Path(tempfile.mkdtemp(prefix="telehealth-pg-"))
    server = start_embedded_postgres(data_dir)
    yield normalize_database_url(server.get_uri("postgres"))
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server, dropped afterwards."""
    url = create_postgres_database(postgres_server_url)
    upgrade_database(url)
    yield url
    reset_for_tests()
    drop_postgres_database(postgres_server_url, url)


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


@pytest.fixture
def configured_app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """Settings for the API on ``database_url`` with the suite's token; tables start empty."""
    configure_environment(monkeypatch, DATABASE_URL=database_url, APP_STAGE="dev", API_TOKENS=SUITE_TOKENS)
    if database_url.startswith("postgresql"):
        with get_engine().begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TRUNCATE_TABLES)} RESTART IDENTITY CASCADE"))
            connection.execute(text("UPDATE row_counts SET row_count = 0"))
    yield database_url
    reset_for_tests()


@pytest.fixture
def client(configured_app: str) -> Iterator[chalice.test.Client]:
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


@pytest.fixture
def two_principals(client: chalice.test.Client, configured_app: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``client``, with a second token (OTHER_TOKEN, principal "other") beside the suite's."""
    configure_environment(
        monkeypatch,
        DATABASE_URL=configured_app,
        APP_STAGE="dev",
        API_TOKENS=f"{SUITE_TOKENS},other:{OTHER_TOKEN}",
    )
    return client


# --- Redis and Celery workers -------------------------------------------------------------------

REDIS_DB_LOCK = "telehealth-test-db-lock:{}"


@pytest.fixture(scope="session")
def redis_database_url() -> Iterator[str]:
    """A Redis database number this session holds alone, on TEST_REDIS_URL or an embedded server."""
    import redis

    configured = os.environ.get("TEST_REDIS_URL")
    # Its own temporary directory, not pytest's basetemp: other pytest runs on the machine prune those.
    server = None if configured else start_embedded_redis()
    server_url = configured or server.connection_url
    admin = redis.Redis.from_url(with_redis_db(server_url, 0))
    owner = uuid.uuid4().hex
    # Other runs may share the machine's Redis: take a database number no one else holds.
    db = next(
        (n for n in range(1, 16) if admin.set(REDIS_DB_LOCK.format(n), owner, nx=True, ex=3600)),
        None,
    )
    if db is None:
        pytest.fail("every Redis database number 1-15 is held by another test run")
    try:
        yield with_redis_db(server_url, db)
    finally:
        if admin.get(REDIS_DB_LOCK.format(db)) == owner.encode():
            redis.Redis.from_url(with_redis_db(server_url, db)).flushdb()
            admin.delete(REDIS_DB_LOCK.format(db))
        admin.close()
        if server is not None:
            server.stop()


def with_redis_db(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


@pytest.fixture
def redis_url(redis_database_url: str) -> str:
    """The session's Redis database, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_database_url) as client:
        client.flushdb()
    return redis_database_url


# Small numbers so that retries, the relay and redelivery happen within a test's few seconds.
FAST_NOTIFICATIONS = {
    "NOTIFY_FAILURE_RATE": "0",
    "NOTIFY_RETRY_BACKOFF": "1",
    "NOTIFY_RETRY_BACKOFF_MAX": "1",
    "NOTIFY_MAX_RETRIES": "3",
    "NOTIFY_RELAY_DELAY": "1",
    "NOTIFY_RELAY_INTERVAL": "1",
    "NOTIFY_CLAIM_TIMEOUT": "2",
    "REDIS_VISIBILITY_TIMEOUT": "4",
}


@pytest.fixture
def notifying_app(
    monkeypatch: pytest.MonkeyPatch, configured_app: str, redis_url: str
) -> Callable[..., None]:
    """``configured_app`` with Redis and fast notification settings; call it to change settings."""

    def configure(**overrides: str) -> None:
        env = {**FAST_NOTIFICATIONS, "REDIS_URL": redis_url, **overrides}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_for_tests()

    configure()
    return configure


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers with ``celery_worker()``; all die at teardown."""
    workers: list[WorkerProcess] = []
    log_path = tmp_path / "worker.log"

    def start() -> WorkerProcess:
        worker = WorkerProcess(log_path)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


@pytest.fixture
def api_log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the API logs during the test, as the process's handler writes them."""
    stream = io.StringIO()
    handler = json_log_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: parse_json_lines(stream.getvalue())
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """EMF lines written whatever the process's log format (METRICS=emf, read afresh)."""
    monkeypatch.setenv("METRICS", "emf")
    monkeypatch.setenv("APP_STAGE", "dev")
    reset_for_tests()
    yield
    reset_for_tests()
