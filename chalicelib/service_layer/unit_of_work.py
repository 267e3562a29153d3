"""Transaction boundaries: ``UnitOfWork`` is the one way to write, ``ReadTransaction`` the one way to read.

The caller creates one and hands it to a service, unopened; the service opens
it with ``with``. Each ``with`` is one transaction on one connection
(``chalicelib.storage.database.begin``), so an object can be entered again once
left (delivery runs two transactions). Inside ``one_connection()`` (an audited
request: its read, then its audit row) they all take the same connection.

Each gives the features' repositories or readers on its transaction. What a
commit does besides committing, the features register as they work: steps
before the commit (the patient counter's write, last; the audit rows of changed
patients), callbacks after it (the notification hand-off). A unit of work that
changed no patient commits its own statements and nothing else.

An audited request's handler passes its ``AuditContext`` (``audit=``): the audit
rows of its changes are written under it, and services name the request's
patient on it (``uow.audit``, ``reads.audit``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from chalicelib.audit.queries import AuditEventReader, AuditEventRepository, StatusRule, read_disclosing
from chalicelib.audit.recording import AuditContext, watch_patient_changes
from chalicelib.errors import AuditUnavailable, DatabaseUnavailable
from chalicelib.notifications.queries import NotificationReader, NotificationRepository
from chalicelib.patients.queries import IdempotencyKeyRepository, PatientReader, PatientRepository
from chalicelib.storage.database import (
    TransactionMode,
    begin,
    get_session_factory,
    is_dropped_connection,
    note_commit_sent,
    release,
)
from chalicelib.storage.models import DisclosedRows
from chalicelib.storage.schema import is_missing_schema

logger = logging.getLogger("telehealth.audit")

Step = Callable[[], None]


class UnitOfWork:
    """``with uow: ...; uow.commit()``: one write transaction, committed once or rolled back.

    Leaving the block without ``commit()`` rolls back. Steps registered with
    ``before_commit`` run in ``commit()`` just before the transaction commits, in
    it (those registered ``last=True`` after all others); callbacks registered with
    ``after_commit`` run only once the commit succeeded, which is where side effects
    that leave the process belong. Both are forgotten when the transaction ends.

    The ORM session (``session`` and the repositories on it) is built on first use:
    a unit of work that only appends an audit row (every read's outcome) stays one
    INSERT on a bare connection.
    """

    def __init__(self, *, audit: AuditContext | None = None) -> None:
        self.audit = audit
        self._mode = TransactionMode.WRITE

    def one_statement(self) -> UnitOfWork:
        """This unit of work, for work that is a single statement: that statement commits by
        itself, with no BEGIN or COMMIT round trip."""
        single = UnitOfWork(audit=self.audit)
        single._mode = TransactionMode.ONE_STATEMENT
        return single

    def disclosing(self) -> UnitOfWork:
        """This unit of work, for an audit row with its disclosures: one statement on PostgreSQL,
        which commits by itself; on SQLite a few, in one write transaction."""
        audited = UnitOfWork(audit=self.audit)
        audited._mode = TransactionMode.AUDITED_READ
        return audited

    def __enter__(self) -> UnitOfWork:
        self._connection = begin(self._mode)
        self._session: Session | None = None
        self._patients: PatientRepository | None = None
        self._before_commit: list[Step] = []
        self._last_before_commit: list[Step] = []
        self._after_commit: list[Step] = []
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
            # The audit trail joins this commit if the session changes a patient.
            watch_patient_changes(self._session, self)
        return self._session

    @property
    def patients(self) -> PatientRepository:
        if self._patients is None:
            self._patients = PatientRepository(self.session, self)
        return self._patients

    @property
    def notifications(self) -> NotificationRepository:
        return NotificationRepository(self.session)

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository:
        return IdempotencyKeyRepository(self.session)

    def before_commit(self, step: Step, *, last: bool = False) -> None:
        """Run ``step`` in this transaction, just before it commits; with ``last``, after every
        step registered without (a row it locks then stays locked only until the commit)."""
        (self._last_before_commit if last else self._before_commit).append(step)

    def after_commit(self, callback: Step) -> None:
        self._after_commit.append(callback)

    def commit(self) -> None:
        """Commit, and end the unit of work: its connection is free again (back in the pool, or
        the request's) before the after-commit callbacks run, since they may need one (concurrent
        requests would otherwise exhaust the pool, each holding one connection and waiting for another)."""
        if self._session is not None:
            # A flush may change a patient, and so register the audit trail's step.
            self._session.flush()
        for step in (*self._before_commit, *self._last_before_commit):
            step()
        if self._session is not None:
            self._session.commit()  # the transaction is the connection's
        self._send_commit()
        self._close()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def _send_commit(self) -> None:
        """COMMIT. A connection lost before this point changed nothing, and the work may run again
        from the start (``chalicelib.http.routes.call_again_if_dropped``); lost while COMMIT is
        under way, it may or may not have committed: DatabaseUnavailable, never run again here."""
        note_commit_sent()
        try:
            self._connection.commit()
        except DBAPIError as error:
            if not is_dropped_connection(error):
                raise  # the server refused the COMMIT and rolled back: a definite answer
            logger.warning("database connection lost during COMMIT: its outcome is unknown")
            raise DatabaseUnavailable() from error

    def _close(self) -> None:
        # Ends (rolls back) any transaction still open; objects keep their loaded state.
        if self._session is not None:
            self._session.close()
        self._before_commit, self._last_before_commit = [], []
        release(self._connection)


class ReadTransaction:
    """``with reads: reads.patients.get(...)``: the reads that answer a request or a check.

    On a bare connection, changing nothing (``TransactionMode.READ``: on SQLite one
    transaction, rolled back on leaving; on PostgreSQL no BEGIN or ROLLBACK round trip).
    No Session: an answer needs values, not objects to change.

    ``disclosing()`` makes it the read that records the request itself (its audit row and the
    patients it shows: ``read_disclosing``), committed when the block ends without an error.
    """

    def __init__(self, *, audit: AuditContext | None = None) -> None:
        self.audit = audit
        self._mode = TransactionMode.READ
        self._wait_for_flush = True

    def one_statement(self) -> ReadTransaction:
        """These reads, when they are a single statement, which sees one state of the database by
        itself: no BEGIN or ROLLBACK on SQLite either."""
        single = ReadTransaction(audit=self.audit)
        single._mode = TransactionMode.ONE_STATEMENT
        return single

    def disclosing(self, *, durable: bool) -> ReadTransaction:
        """This read, as the one that answers the request and records it (``read_disclosing``):
        on PostgreSQL one statement, committed by itself; on SQLite one write transaction,
        committed when the block ends without an error. The audit context is then marked
        recorded, and the route wrapper writes no row of its own. Unless ``durable``
        (``AUDIT_READ_COMMIT=durable``), a read's statement commits on PostgreSQL without
        waiting for the WAL flush, as ``chalicelib.audit.service.record_outcome`` does.
        Without an audit context it only reads, in one statement.
        """
        audited = ReadTransaction(audit=self.audit)
        audited._mode = TransactionMode.ONE_STATEMENT if self.audit is None else TransactionMode.AUDITED_READ
        audited._wait_for_flush = durable or self.audit is None or not self.audit.action.reads
        return audited

    def __enter__(self) -> ReadTransaction:
        self._connection = begin(self._mode)
        self._recorded = False
        self.patients = PatientReader(self._connection, self.read_disclosing)
        self.notifications = NotificationReader(self._connection)
        self.audit_events = AuditEventReader(self._connection)
        return self

    def read_disclosing(
        self,
        rows: Select[Any],
        *,
        params: Mapping[str, Any] | None = None,
        order_by: Sequence[str] = ("id",),
        shown: int | None = None,
        status: StatusRule | None = None,
        columns: Sequence[ColumnElement[Any]] = (),
    ) -> DisclosedRows:
        """``chalicelib.audit.queries.read_disclosing`` on this transaction: recorded under its
        audit context inside ``disclosing()``, a plain read (nothing recorded) outside it.

        Raises AuditUnavailable when the recorded read fails, whichever of its parts failed (one
        statement on PostgreSQL: no answer without its record); a lost connection (read again by
        the route wrapper) and a missing table (``schema_not_migrated``) as they are.
        """
        recording = self._mode is TransactionMode.AUDITED_READ
        try:
            read = read_disclosing(
                self._connection,
                rows,
                self.audit if recording else None,
                params=params,
                order_by=order_by,
                shown=shown,
                status=status,
                columns=columns,
                wait_for_flush=self._wait_for_flush,
            )
        except DBAPIError as error:
            if not recording or is_dropped_connection(error) or is_missing_schema(error):
                raise
            logger.exception("audited read failed: nothing answered, nothing recorded")
            if self.audit is not None:
                self.audit.mark_unrecorded()
            raise AuditUnavailable() from None
        self._recorded = self._recorded or recording
        return read

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._recorded and exc_type is None:
                # PostgreSQL's statement committed itself (this sends nothing); SQLite's rows commit here.
                self._connection.commit()
                if self.audit is not None:
                    self.audit.mark_recorded()
        finally:
            release(self._connection)
