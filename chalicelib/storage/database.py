"""One engine per process, created on first use and reused across warm invocations.

In Lambda a process is a container that serves one request at a time and is
frozen between invocations, so the PostgreSQL engine is built for that: a
connection the server has closed meanwhile (RDS Proxy's idle timeout, a restart)
is noticed at checkout without a round trip (``_discard_if_server_closed``),
recycling well under RDS Proxy's idle client timeout, no server-side prepared
statements (they pin a client to one database connection behind RDS Proxy),
and either a small pool or, with ``DB_POOL=null``, none at all.

Round trips, not the statements' work, set a request's time between Lambda and
the database: each transaction mode (``TransactionMode``) sends only the BEGIN
and COMMIT it needs, and inside ``one_connection()`` (an audited request: its
read, then its audit row) every transaction takes the same connection, checked
out once (``begin``, ``release``). Engines, transaction modes and that shared connection stay in one
module (just over 300 lines): each mode is set on the connection the sharing hands out.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from chalicelib.config import provided
from chalicelib.config.process_cache import on_forget, process_cache
from chalicelib.errors import DatabaseUnavailable

logger = logging.getLogger("telehealth.database")

# The statement that begins a transaction on SQLite (None: none, each statement commits itself).
SQLITE_BEGIN = "sqlite_begin"
AUTOCOMMIT = "AUTOCOMMIT"


class TransactionMode(Enum):
    """How the statements of one ``ReadTransaction`` or ``UnitOfWork`` are grouped."""

    # One transaction, BEGIN … COMMIT. On SQLite it takes the write lock when it begins: a
    # deferred one that reads first and writes later fails at once with "database is locked"
    # instead of waiting out the busy timeout.
    WRITE = "BEGIN IMMEDIATE"
    # Reads that answer a request. On SQLite one deferred transaction, so that they see one state
    # of the database. On PostgreSQL each statement on its own: at READ COMMITTED each statement
    # sees its own state anyway, and this spares the BEGIN and ROLLBACK round trips.
    READ = "BEGIN"
    # Work that is one statement, which commits by itself: no BEGIN or COMMIT round trip.
    ONE_STATEMENT = None
    # A read that records its own audit row (``chalicelib.audit.queries.read_disclosing``). On
    # PostgreSQL one statement, which commits by itself, as ONE_STATEMENT. On SQLite, which cannot
    # write from a WITH clause, a few statements in one transaction that writes (so it takes the
    # write lock when it begins, as WRITE; the words differ only so that the two modes differ).
    AUDITED_READ = "BEGIN IMMEDIATE TRANSACTION"


def build_engine(
    url: str,
    *,
    sqlite_busy_timeout_ms: int = 5000,
    pool: str = "queue",
    pool_size: int = 2,
    max_overflow: int = 8,
) -> Engine:
    # hide_parameters keeps patient values out of every SQLAlchemy error message.
    if url.startswith("sqlite"):
        return _build_sqlite_engine(url, sqlite_busy_timeout_ms)
    if (
        "rds_iam_auth" not in url
    ):  # the data tier's URL (``chalicelib.storage.rds_iam_auth``), loaded only for it
        return _build_postgresql_engine(url, pool, pool_size, max_overflow)
    from chalicelib.storage.rds_iam_auth import authenticate_with_iam_tokens, without_iam_auth_marker

    url, iam_auth = without_iam_auth_marker(url)
    engine = _build_postgresql_engine(url, pool, pool_size, max_overflow)
    if iam_auth:
        authenticate_with_iam_tokens(engine, url)
    return engine


def _build_postgresql_engine(url: str, pool: str, pool_size: int, max_overflow: int) -> Engine:
    # psycopg prepares a statement on the server after 5 runs; None never does.
    connect_args = {"connect_timeout": 5, "prepare_threshold": None}
    if pool == "null":
        return create_engine(url, hide_parameters=True, poolclass=NullPool, connect_args=connect_args)
    engine = create_engine(
        url,
        hide_parameters=True,
        # No pre-ping: its statement would be one more round trip on every request.
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=300,
        connect_args=connect_args,
    )
    event.listen(engine, "checkout", _discard_if_server_closed)
    return engine


def _discard_if_server_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has ended; the pool then opens a new one.

    An idle connection has nothing to read: anything waiting on its socket is the
    server's goodbye (``terminating connection``) or the end of the stream. One
    poll of the socket, no round trip.
    """
    try:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("the connection is closed")
        readable, _, _ = select.select([dbapi_connection.pgconn.socket], [], [], 0)
    except (OSError, ValueError) as error:
        raise DisconnectionError("the connection's socket is gone") from error
    except Exception as error:  # psycopg.OperationalError: the connection is lost
        raise DisconnectionError("the connection is lost") from error
    if readable:
        raise DisconnectionError("the server closed the connection")


def is_dropped_connection(error: BaseException) -> bool:
    """True when ``error`` is the loss of the database connection (which the pool then discards)."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


class Attempt:
    """One run of some work (a handler's service call): whether it sent a COMMIT.

    Until it has, a lost connection changed nothing and the work may run again from the start on
    a new connection; once it has, the outcome of that COMMIT is unknown to us.
    """

    def __init__(self) -> None:
        self.commit_sent = False


_attempt: ContextVar[Attempt | None] = ContextVar("attempt", default=None)


@contextmanager
def attempt() -> Iterator[Attempt]:
    """Watch the work run in this block for a COMMIT sent (``note_commit_sent``)."""
    watched = Attempt()
    token = _attempt.set(watched)
    try:
        yield watched
    finally:
        _attempt.reset(token)


def note_commit_sent() -> None:
    """Say that the work of the current ``attempt()`` (if any) is sending a COMMIT."""
    watched = _attempt.get()
    if watched is not None:
        watched.commit_sent = True


def set_transaction_mode(connection: Connection, mode: TransactionMode) -> None:
    """Make the transactions begun on ``connection`` from now on ones of ``mode`` (none may be open)."""
    if connection.dialect.name == "sqlite":
        # The driver never begins a transaction itself here; "begin" below sends what mode says.
        connection.execution_options(**{SQLITE_BEGIN: mode.value})
        return
    autocommit = mode is not TransactionMode.WRITE
    if (connection.get_execution_options().get("isolation_level") == AUTOCOMMIT) != autocommit:
        connection.execution_options(
            isolation_level=AUTOCOMMIT if autocommit else connection.default_isolation_level
        )


def _build_sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, decides when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        begin = connection.get_execution_options().get(SQLITE_BEGIN, TransactionMode.READ.value)
        if begin is not None:
            connection.exec_driver_sql(begin)

    return engine


@process_cache()
def get_engine() -> Engine:
    """The process's engine, built on first use from the database settings it is provided."""
    database = provided.DATABASE()
    return build_engine(
        database.url,
        sqlite_busy_timeout_ms=database.sqlite_busy_timeout_ms,
        pool=database.pool,
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
    )


@process_cache()
def get_session_factory() -> sessionmaker[Session]:
    # A unit of work binds each session to its own connection and commits that connection's
    # transaction itself: the session may roll it back (a failed flush) but never commits it.
    return sessionmaker(
        bind=get_engine(), expire_on_commit=False, autoflush=False, join_transaction_mode="rollback_only"
    )


def reset_engine(*, close_connections: bool = True) -> None:
    """Forget the cached engine (tests and configuration reloads).

    In a forked child, pass ``close_connections=False``: the pooled connections
    are its parent's, and closing them would end them for the parent too.
    """
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=close_connections)
    get_engine.cache_clear()
    get_session_factory.cache_clear()


on_forget(reset_engine)


class _RequestConnection:
    """The one connection of a ``one_connection()`` block, checked out on first use."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.in_use = False

    def take(self) -> Connection:
        if self.connection is None or self.connection.invalidated:
            self.close()
            self.connection = _connect()
        self.in_use = True
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# Written only by one_connection(): the request is its scope.
_request_connection: ContextVar[_RequestConnection | None] = ContextVar("request_connection", default=None)


@contextmanager
def one_connection() -> Iterator[None]:
    """Every transaction begun in this block (``begin``), one after the other, uses one
    connection: checked out once, given back when the block ends."""
    shared = _RequestConnection()
    token = _request_connection.set(shared)
    try:
        yield
    finally:
        _request_connection.reset(token)
        shared.close()


def begin(mode: TransactionMode) -> Connection:
    """A connection with a transaction of ``mode`` begun on it: the request's own inside
    ``one_connection()``, else one from the pool. Give it back with ``release``."""
    shared = _request_connection.get()
    # One opened while another is still open (nested) gets a connection of its own.
    connection = shared.take() if shared is not None and not shared.in_use else _connect()
    try:
        set_transaction_mode(connection, mode)
        connection.begin()
    except BaseException:
        release(connection)
        raise
    return connection


def _connect() -> Connection:
    """A connection from the pool, or DatabaseUnavailable when none can be opened (the server is
    down, failing over, or refuses us): nothing was sent, and there is nothing to run again on."""
    try:
        return get_engine().connect()
    except DBAPIError as error:
        # Never the error's text: it may name the host and the user.
        logger.warning("cannot connect to the database (%s)", type(error.orig).__name__)
        raise DatabaseUnavailable() from error


def release(connection: Connection) -> None:
    """End what ``begin`` started: roll back what was not committed, and give the connection back
    (to the pool, or to the request for its next transaction)."""
    shared = _request_connection.get()
    if shared is None or shared.connection is not connection:
        connection.close()
        return
    shared.in_use = False
    try:
        if connection.in_transaction():
            connection.rollback()
    except BaseException:
        shared.close()
        raise
