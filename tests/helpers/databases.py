"""Databases of the test's own, the audit trail's outage, and rows put in place without the API."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine

# For tests whose requests never reach the database: once, on SQLite, instead of once per database.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- PostgreSQL databases -------------------------------------------------------------------------


def create_postgres_database(server_url: str) -> str:
    """A new, empty database (no tables) on the PostgreSQL server at ``server_url``; its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"telehealth_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _libpq(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- Outages ------------------------------------------------------------------------------------

# Each write to the audit table fails, as in an outage; the schema stays whole (a missing table is
# another answer: schema_not_migrated).
AUDIT_OFFLINE_SQLITE = [
    f"CREATE TRIGGER audit_events_offline_{event} BEFORE {event} ON audit_events"
    " BEGIN SELECT RAISE(ABORT, 'audit trail offline'); END"
    for event in ("INSERT", "UPDATE")
]
AUDIT_OFFLINE_POSTGRESQL = [
    "CREATE FUNCTION audit_events_offline() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION 'audit trail offline'; END $$",
    "CREATE TRIGGER audit_events_offline BEFORE INSERT OR UPDATE ON audit_events"
    " FOR EACH ROW EXECUTE FUNCTION audit_events_offline()",
]
AUDIT_ONLINE_SQLITE = [f"DROP TRIGGER audit_events_offline_{event}" for event in ("INSERT", "UPDATE")]
AUDIT_ONLINE_POSTGRESQL = [
    "DROP TRIGGER audit_events_offline ON audit_events",
    "DROP FUNCTION audit_events_offline()",
]


@contextmanager
def audit_trail_offline() -> Iterator[None]:
    """Make every write to the audit table fail until the block ends."""
    sqlite = get_engine().dialect.name == "sqlite"
    with get_engine().begin() as connection:
        for statement in AUDIT_OFFLINE_SQLITE if sqlite else AUDIT_OFFLINE_POSTGRESQL:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with get_engine().begin() as connection:
            for statement in AUDIT_ONLINE_SQLITE if sqlite else AUDIT_ONLINE_POSTGRESQL:
                connection.execute(text(statement))


# --- Lost connections (PostgreSQL) ---------------------------------------------------------------

COMMIT = "COMMIT"  # ``cut_connection``'s name for the moment COMMIT is about to be sent


@contextmanager
def cut_connection(at: str | Callable[[str], bool], *, times: int = 1) -> Iterator[list[int]]:
    """Terminate (``pg_terminate_backend``, from a connection of its own) the server process of the
    app's connection that is about to run a statement starting with ``at`` (or one ``at`` accepts),
    or, with ``at=COMMIT``, to send a COMMIT: what an RDS failover or RDS Proxy's recycling does to
    it. The first ``times`` such moments only; yields the pids cut, as they are."""
    import psycopg

    engine = get_engine()
    cut: list[int] = []
    admin = psycopg.connect(_libpq(engine.url.render_as_string(hide_password=False)), autocommit=True)

    def matches(statement: str) -> bool:
        return at(statement) if callable(at) else statement.lstrip().startswith(at)

    def terminate(connection: Any) -> None:
        pid = connection.connection.dbapi_connection.info.backend_pid
        # The timeout makes it wait until the process has ended, so the statement meets a dead one.
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        cut.append(pid)

    def before_statement(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if at != COMMIT and len(cut) < times and matches(statement):
            terminate(connection)

    def before_commit(connection: Any) -> None:
        if at == COMMIT and len(cut) < times:
            terminate(connection)

    event.listen(engine, "before_cursor_execute", before_statement)
    event.listen(engine, "commit", before_commit)
    try:
        yield cut
    finally:
        event.remove(engine, "before_cursor_execute", before_statement)
        event.remove(engine, "commit", before_commit)
        admin.close()


@contextmanager
def cutting_every_connection(database_url: str, every_seconds: float) -> Iterator[list[int]]:
    """Terminate every other server process of the database at ``database_url`` every
    ``every_seconds`` until the block ends (a failover, again and again); yields the pids cut."""
    import psycopg
    from sqlalchemy.engine import make_url

    database = make_url(database_url).database
    stop = threading.Event()
    cut: list[int] = []

    def cut_all() -> None:
        with psycopg.connect(_libpq(database_url), autocommit=True) as admin:
            while not stop.wait(every_seconds):
                rows = admin.execute(
                    "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                cut.extend(pid for pid, _ in rows)

    thread = threading.Thread(target=cut_all, daemon=True)
    thread.start()
    try:
        yield cut
    finally:
        stop.set()
        thread.join(timeout=10)


# --- Rows put in place directly -------------------------------------------------------------


def insert_idempotency_keys(rows: list[dict[str, Any]]) -> None:
    """Key rows of principal ``clinic`` as a create would leave them: ``key``, ``created``, ``expires``."""
    with UnitOfWork() as uow:
        uow.session.execute(
            text(
                "INSERT INTO idempotency_keys (principal, key, request_sha256, patient_id, result,"
                " created_at, expires_at) VALUES ('clinic', :key, 'x', NULL, NULL, :created, :expires)"
            ),
            rows,
        )
        uow.commit()
