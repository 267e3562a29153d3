"""Transaction boundaries: ``UnitOfWork`` is the one way to write, ``ReadTransaction`` the one way to read.

The caller creates one and hands it to a service, unopened; the service opens
it with ``with``. Each ``with`` is one transaction on one connection, so an
object can be entered again once left (delivery runs two transactions).

Inside ``one_connection()`` (an audited request: its read, then its audit row)
they all take the same connection, checked out once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from chalicelib.audit.queries import AuditEventReader, AuditEventRepository
from chalicelib.audit.recording import record_changes, watch_patient_changes
from chalicelib.notifications.queries import NotificationReader, NotificationRepository
from chalicelib.patients.queries import IdempotencyKeyRepository, PatientReader, PatientRepository
from chalicelib.storage.database import (
    TransactionMode,
    get_engine,
    get_session_factory,
    set_transaction_mode,
)


class UnitOfWork:
    """``with uow: ...; uow.commit()``: one write transaction, committed once or rolled back.

    Leaving the block without ``commit()`` rolls back. Callbacks registered
    with ``after_commit`` run only once the commit succeeded, which is where
    side effects that leave the process belong. ``commit()`` also writes the
    audit row of every patient the unit of work changed (``chalicelib.audit.recording``),
    in the same transaction.

    The ORM session (``session`` and the repositories on it) is built on first use:
    a unit of work that only appends an audit row (every read's outcome) stays one
    INSERT on a bare connection. With ``one_statement=True`` the work must be a
    single statement, which then commits by itself: no BEGIN or COMMIT round trip.
    """

    def __init__(self, *, one_statement: bool = False) -> None:
        self._mode = TransactionMode.ONE_STATEMENT if one_statement else TransactionMode.WRITE

    def __enter__(self) -> UnitOfWork:
        self._connection = _begin(self._mode)
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []
        self.audit_events = AuditEventRepository(self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = get_session_factory()(bind=self._connection)
            watch_patient_changes(self._session)
        return self._session

    @property
    def patients(self) -> PatientRepository:
        return PatientRepository(self.session)

    @property
    def notifications(self) -> NotificationRepository:
        return NotificationRepository(self.session)

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository:
        return IdempotencyKeyRepository(self.session)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def commit(self) -> None:
        """Commit, and end the unit of work: its connection is free again (back in the pool, or
        the request's) before the after-commit callbacks run, since they may need one (concurrent
        requests would otherwise exhaust the pool, each holding one connection and waiting for another)."""
        audited = None
        if self._session is not None:
            self._session.flush()
            audited = record_changes(self._session)
            # Last: the counter row it locks stays locked only until this commit.
            PatientRepository(self._session).write_count_change()
            self._session.commit()  # the transaction is the connection's
        self._connection.commit()
        self._close()
        if audited is not None:
            audited.recorded = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _close(self) -> None:
        # Ends (rolls back) any transaction still open; objects keep their loaded state.
        if self._session is not None:
            self._session.close()
        _release(self._connection)


class ReadTransaction:
    """``with reads: reads.patients.get(...)``: the reads that answer a request or a check.

    On a bare connection, changing nothing (``TransactionMode.READ``: on SQLite one
    transaction, rolled back on leaving; on PostgreSQL no BEGIN or ROLLBACK round trip).
    No Session: an answer needs values, not objects to change. With ``one_statement=True``
    the reads must be a single statement, which sees one state of the database by itself:
    no BEGIN or ROLLBACK on SQLite either.
    """

    def __init__(self, *, one_statement: bool = False) -> None:
        self._mode = TransactionMode.ONE_STATEMENT if one_statement else TransactionMode.READ

    def __enter__(self) -> ReadTransaction:
        self._connection = _begin(self._mode)
        self.patients = PatientReader(self._connection)
        self.notifications = NotificationReader(self._connection)
        self.audit_events = AuditEventReader(self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _release(self._connection)


class _RequestConnection:
    """The one connection of a ``one_connection()`` block, checked out on first use."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.in_use = False

    def take(self) -> Connection:
        if self.connection is None or self.connection.invalidated:
            self.close()
            self.connection = get_engine().connect()
        self.in_use = True
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


_request_connection: ContextVar[_RequestConnection | None] = ContextVar("request_connection", default=None)


@contextmanager
def one_connection() -> Iterator[None]:
    """Every ``ReadTransaction`` and ``UnitOfWork`` in this block, one after the other, uses one
    connection: checked out once, given back when the block ends."""
    shared = _RequestConnection()
    token = _request_connection.set(shared)
    try:
        yield
    finally:
        _request_connection.reset(token)
        shared.close()


def _begin(mode: TransactionMode) -> Connection:
    shared = _request_connection.get()
    # One opened while another is still open (nested) gets a connection of its own.
    connection = shared.take() if shared is not None and not shared.in_use else get_engine().connect()
    try:
        set_transaction_mode(connection, mode)
        connection.begin()
    except BaseException:
        _release(connection)
        raise
    return connection


def _release(connection: Connection) -> None:
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
