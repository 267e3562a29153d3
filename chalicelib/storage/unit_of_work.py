"""Transaction boundaries: ``UnitOfWork`` is the one way to write, ``ReadTransaction`` the one way to read.

The caller creates one and hands it to a service, unopened; the service opens
it with ``with``. Each ``with`` is one transaction on one connection, so an
object can be entered again once left (delivery runs two transactions).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from chalicelib.audit.queries import AuditEventReader, AuditEventRepository
from chalicelib.audit.recording import record_changes, watch_patient_changes
from chalicelib.notifications.queries import NotificationReader, NotificationRepository
from chalicelib.patients.queries import IdempotencyKeyRepository, PatientReader, PatientRepository
from chalicelib.storage.database import SQLITE_BEGIN_IMMEDIATE, get_engine, get_session_factory


class UnitOfWork:
    """``with uow: ...; uow.commit()``: one write transaction, committed once or rolled back.

    Leaving the block without ``commit()`` rolls back. Callbacks registered
    with ``after_commit`` run only once the commit succeeded, which is where
    side effects that leave the process belong. ``commit()`` also writes the
    audit row of every patient the unit of work changed (``chalicelib.audit.recording``),
    in the same transaction.

    The ORM session (``session`` and the repositories on it) is built on first use:
    a unit of work that only appends an audit row (every read's outcome) stays one
    INSERT on a bare connection.
    """

    def __enter__(self) -> UnitOfWork:
        self._connection = _begin(write=True)
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
        """Commit, and end the unit of work: its connection goes back to the pool before the
        after-commit callbacks run, since they may need one (concurrent requests would otherwise
        exhaust the pool, each holding one connection and waiting for another)."""
        audited = None
        if self._session is not None:
            audited = record_changes(self._session)
            self._session.commit()  # flushes: the transaction is the connection's
        self._connection.commit()
        self._close()
        if audited is not None:
            audited.recorded = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _close(self) -> None:
        # Closing ends (rolls back) any transaction still open; objects keep their loaded state.
        if self._session is not None:
            self._session.close()
        self._connection.close()


class ReadTransaction:
    """``with reads: reads.patients.get(...)``: the reads that answer a request or a check.

    One transaction on a bare connection, so that the statements in it see one
    state of the database; it changes nothing and is rolled back on leaving.
    No Session: an answer needs values, not objects to change.
    """

    def __enter__(self) -> ReadTransaction:
        self._connection = _begin(write=False)
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
        self._connection.close()


def _begin(*, write: bool) -> Connection:
    connection = get_engine().connect()
    if write:
        # Only SQLite reads this option (see chalicelib.storage.database).
        connection.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True})
    try:
        connection.begin()
    except BaseException:
        connection.close()
        raise
    return connection
