"""The transaction boundary: one session, committed once or rolled back."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from chalicelib.audit.recording import record_changes, watch_patient_changes
from chalicelib.storage.database import SQLITE_BEGIN_IMMEDIATE, get_engine, get_session_factory
from chalicelib.storage.repository import (
    AuditEventRepository,
    IdempotencyKeyRepository,
    NotificationRepository,
    PatientReader,
    PatientRepository,
)


class UnitOfWork:
    """``with UnitOfWork(write=True) as uow: ...; uow.commit()``.

    Leaving the block without ``commit()`` rolls back. Callbacks registered
    with ``after_commit`` run only once the commit succeeded, which is where
    side effects that leave the process belong. ``commit()`` also writes the
    audit row of every patient the unit of work changed (``chalicelib.audit.recording``),
    in the same transaction.
    """

    def __init__(self, *, write: bool = False, session_factory: sessionmaker[Session] | None = None) -> None:
        self._write = write
        self._session_factory = session_factory
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> UnitOfWork:
        factory = self._session_factory or get_session_factory()
        self.session = factory()
        if self._write:
            # Only SQLite reads this option (see chalicelib.storage.database).
            self.session.connection(execution_options={SQLITE_BEGIN_IMMEDIATE: True})
        watch_patient_changes(self.session)
        self.patients = PatientRepository(self.session)
        self.idempotency_keys = IdempotencyKeyRepository(self.session)
        self.audit_events = AuditEventRepository(self.session)
        self.notifications = NotificationRepository(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Closing ends (rolls back) any transaction still open; objects keep their loaded state.
        self.session.close()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def commit(self) -> None:
        audited = record_changes(self.session)
        self.session.commit()
        if audited is not None:
            audited.recorded = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


class ReadTransaction:
    """``with ReadTransaction() as reads: reads.patients.get(...)``: reads that answer a request.

    One transaction on a bare connection, so that the statements in it see one
    state of the database; it changes nothing and is rolled back on leaving.
    No Session: the answer needs values, not objects to change.
    """

    def __enter__(self) -> ReadTransaction:
        self._connection: Connection = get_engine().connect()
        self._connection.begin()
        self.patients = PatientReader(self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._connection.close()
