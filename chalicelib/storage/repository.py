"""Queries over the patient, notification, idempotency-key and audit tables.

Constraint violations become domain errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.storage.models import (
    AuditEvent,
    IdempotencyRecord,
    Notification,
    NotificationStatus,
    Patient,
    PatientRecord,
    RowCount,
)

EMAIL_CONSTRAINT = "uq_patients_email_key"
PATIENTS_TABLE = Patient.__tablename__


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, patient_id: int, *, for_update: bool = False) -> Patient | None:
        return self._session.get(Patient, patient_id, with_for_update=for_update or None)

    def add(self, patient: Patient) -> Patient:
        self._session.add(patient)
        self.flush()
        self._change_count(+1)
        return patient

    def flush(self) -> None:
        """Write pending changes now, so the database's constraints decide."""
        try:
            self._session.flush()
        except IntegrityError as error:
            if _violates(error, EMAIL_CONSTRAINT, "patients.email_key"):
                raise DuplicateEmail() from None
            raise

    def delete(self, patient: Patient) -> None:
        self._session.delete(patient)
        self._session.flush()
        self._change_count(-1)

    def count(self) -> int:
        return _patient_count(self._session)

    def recount(self) -> int:
        """Set the counter from ``count(*)``: after rows were loaded or removed behind the API's back."""
        exact = self._session.scalar(select(func.count()).select_from(Patient)) or 0
        self._session.execute(
            update(RowCount).where(RowCount.table_name == PATIENTS_TABLE).values(row_count=exact),
            execution_options={"synchronize_session": False},
        )
        return exact

    def contact(self, patient_id: int) -> tuple[str, str | None] | None:
        """The patient's email and E.164 phone, or None if the patient is gone."""
        row = self._session.execute(_CONTACT, {"patient_id": patient_id}).first()
        return (row.email, row.phone_e164) if row else None

    def _change_count(self, delta: int) -> None:
        # One UPDATE ... SET row_count = row_count + delta: the database serializes
        # concurrent writers on the counter row, so no change is lost. It comes last
        # in the transaction, so that row stays locked only until the commit.
        self._session.execute(
            update(RowCount)
            .where(RowCount.table_name == PATIENTS_TABLE)
            .values(row_count=RowCount.row_count + delta),
            execution_options={"synchronize_session": False},
        )


class PatientReader:
    """The reads that answer patient requests, as plain records on a bare connection.

    Loading ORM objects costs more than the query itself (``make bench-baseline``),
    and an answer needs only the values.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, patient_id: int) -> PatientRecord | None:
        row = self._connection.execute(_PATIENT_BY_ID, {"patient_id": patient_id}).first()
        return PatientRecord(*row) if row else None

    def count(self) -> int:
        return _patient_count(self._connection)

    def page(self, *, offset: int, limit: int) -> list[PatientRecord]:
        """``limit`` patients in id order from position ``offset``.

        The skipping happens on the primary key alone (an index-only scan on
        PostgreSQL), and only the rows returned are read in full.
        """
        return self._records(_PATIENT_PAGE_AT_OFFSET, {"offset": offset, "limit": limit})

    def after(self, patient_id: int, *, limit: int, offset: int = 0) -> list[PatientRecord]:
        """``limit`` patients in id order whose id is greater than ``patient_id`` (keyset paging),
        from position ``offset`` among those (skipped on the primary key alone, as in ``page``)."""
        if offset:
            params = {"after": patient_id, "offset": offset, "limit": limit}
            return self._records(_PATIENT_PAGE_AFTER_AT_OFFSET, params)
        return self._records(_PATIENT_PAGE_AFTER, {"after": patient_id, "limit": limit})

    def _records(self, query: Select[Any], params: dict[str, int]) -> list[PatientRecord]:
        return [PatientRecord(*row) for row in self._connection.execute(query, params)]


def _patient_count(executor: Session | Connection) -> int:
    """The maintained count; an exact ``count(*)`` only if the counter row is missing."""
    maintained = executor.scalar(_MAINTAINED_PATIENT_COUNT)
    if maintained is not None:
        return int(maintained)
    return int(executor.scalar(_EXACT_PATIENT_COUNT) or 0)


@dataclass(frozen=True)
class ClaimedNotification:
    """What a delivery attempt needs, as its claim returned it; ``attempt`` is the claim's version."""

    id: str
    patient_id: int
    event: str
    channels: str
    delivered_channels: str
    correlation_id: str | None
    attempt: int


# The worker's statements are built once, on the tables rather than the mapped
# classes: building SQLAlchemy expressions, and ORM execution, cost more per
# delivery than running the SQL.
_PATIENTS = cast(Table, Patient.__table__)
_NOTIFICATIONS = cast(Table, Notification.__table__)
_patients = _PATIENTS.c
_notifications = _NOTIFICATIONS.c
_PATIENT_RECORD = select(
    _patients.id,
    _patients.name,
    _patients.email,
    _patients.phone,
    _patients.version,
    _patients.created_at,
    _patients.updated_at,
)
_PATIENT_BY_ID = _PATIENT_RECORD.where(_patients.id == bindparam("patient_id"))
_PATIENT_PAGE_AFTER = (
    _PATIENT_RECORD.where(_patients.id > bindparam("after")).order_by(_patients.id).limit(bindparam("limit"))
)
# The first id of the page, found by skipping on the primary key alone.
_FIRST_ID_AT_OFFSET = (
    select(_patients.id).order_by(_patients.id).offset(bindparam("offset")).limit(1).scalar_subquery()
)
_PATIENT_PAGE_AT_OFFSET = (
    _PATIENT_RECORD.where(_patients.id >= _FIRST_ID_AT_OFFSET)
    .order_by(_patients.id)
    .limit(bindparam("limit"))
)
_FIRST_ID_AFTER_AT_OFFSET = (
    select(_patients.id)
    .where(_patients.id > bindparam("after"))
    .order_by(_patients.id)
    .offset(bindparam("offset"))
    .limit(1)
    .scalar_subquery()
)
_PATIENT_PAGE_AFTER_AT_OFFSET = (
    _PATIENT_RECORD.where(_patients.id >= _FIRST_ID_AFTER_AT_OFFSET)
    .order_by(_patients.id)
    .limit(bindparam("limit"))
)
_MAINTAINED_PATIENT_COUNT = select(RowCount.row_count).where(RowCount.table_name == PATIENTS_TABLE)
_EXACT_PATIENT_COUNT = select(func.count()).select_from(_PATIENTS)
_CONTACT = select(_patients.email, _patients.phone_e164).where(_patients.id == bindparam("patient_id"))
_CLAIM = (
    update(_NOTIFICATIONS)
    .where(
        _notifications.id == bindparam("notification_id"),
        _notifications.status.in_(NotificationStatus.CLAIMABLE)
        | (
            (_notifications.status == NotificationStatus.SENDING)
            & (_notifications.next_attempt_at <= bindparam("now"))
        ),
    )
    .values(
        status=NotificationStatus.SENDING,
        attempts=_notifications.attempts + 1,
        updated_at=bindparam("now"),
        next_attempt_at=bindparam("until"),
    )
    .returning(
        _notifications.id,
        _notifications.patient_id,
        _notifications.event,
        _notifications.channels,
        _notifications.delivered_channels,
        _notifications.correlation_id,
        _notifications.attempts,
    )
)
# An outcome counts only for the attempt that holds the claim (its attempt number).
_THIS_ATTEMPT = update(_NOTIFICATIONS).where(
    _notifications.id == bindparam("notification_id"),
    _notifications.attempts == bindparam("attempt"),
    _notifications.status.not_in(NotificationStatus.FINISHED),
)
_RECORD_DELIVERED = _THIS_ATTEMPT.values(
    status=NotificationStatus.DELIVERED,
    delivered_channels=bindparam("delivered"),
    delivered_at=bindparam("now"),
    updated_at=bindparam("now"),
    next_attempt_at=None,
)
_RECORD_FAILURE = _THIS_ATTEMPT.values(
    status=bindparam("new_status"),
    last_error=bindparam("error"),
    delivered_channels=bindparam("delivered"),
    updated_at=bindparam("now"),
    next_attempt_at=bindparam("retry_by"),
)
_RECORD_CANCELLED = _THIS_ATTEMPT.values(
    status=NotificationStatus.CANCELLED, updated_at=bindparam("now"), next_attempt_at=None
)


class NotificationRepository:
    """The outbox. State changes are conditional UPDATEs, so two workers never both win a claim."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, notification: Notification) -> Notification:
        self._session.add(notification)
        self._session.flush()
        return notification

    def get(self, notification_id: str) -> Notification | None:
        return self._session.get(Notification, notification_id)

    def count_for_patient(self, patient_id: int) -> int:
        query = select(func.count()).select_from(Notification).where(Notification.patient_id == patient_id)
        return self._session.scalar(query) or 0

    def page_for_patient(self, patient_id: int, *, offset: int, limit: int) -> Sequence[Notification]:
        query = (
            select(Notification)
            .where(Notification.patient_id == patient_id)
            .order_by(Notification.created_at, Notification.id)
            .offset(offset)
            .limit(limit)
        )
        return self._session.scalars(query).all()

    def count_with_status(self, status: str) -> int:
        query = select(func.count()).select_from(Notification).where(Notification.status == status)
        return self._session.scalar(query) or 0

    def page_with_status(self, status: str, *, offset: int, limit: int) -> Sequence[Notification]:
        query = (
            select(Notification)
            .where(Notification.status == status)
            .order_by(Notification.created_at, Notification.id)
            .offset(offset)
            .limit(limit)
        )
        return self._session.scalars(query).all()

    def mark_pending(self, notification_id: str, now: datetime) -> None:
        """Record a failed hand-off, unless the notification has moved on since."""
        self._session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == NotificationStatus.QUEUED)
            .values(status=NotificationStatus.PENDING, updated_at=now)
        )

    def mark_queued(self, notification_ids: Sequence[str], now: datetime) -> None:
        """Record a relay's hand-off; a worker may already have moved past ``pending``."""
        self._session.execute(
            update(Notification)
            .where(Notification.id.in_(notification_ids), Notification.status == NotificationStatus.PENDING)
            .values(status=NotificationStatus.QUEUED, updated_at=now)
        )

    def cancel_unsent_for_patient(self, patient_id: int, now: datetime) -> None:
        self._session.execute(
            update(Notification)
            .where(
                Notification.patient_id == patient_id,
                Notification.status.in_(NotificationStatus.CLAIMABLE),
            )
            .values(status=NotificationStatus.CANCELLED, updated_at=now, next_attempt_at=None)
        )

    def claim(self, notification_id: str, *, now: datetime, until: datetime) -> ClaimedNotification | None:
        """Take the notification for one delivery attempt until ``until``; None if it is not claimable.

        Claimable: not yet claimed, or claimed by a worker whose claim expired (it died).
        """
        row = self._session.execute(
            _CLAIM, {"notification_id": notification_id, "now": now, "until": until}
        ).first()
        return ClaimedNotification(*row) if row else None

    def record_delivered(self, claim: ClaimedNotification, *, channels: str, now: datetime) -> bool:
        """Mark the claimed attempt delivered, unless another attempt has claimed the row since."""
        params = {**self._attempt(claim), "delivered": channels, "now": now}
        return self._finished(self._session.execute(_RECORD_DELIVERED, params))

    def record_failure(
        self,
        claim: ClaimedNotification,
        *,
        final: bool,
        last_error: str,
        channels: str,
        now: datetime,
        next_attempt_at: datetime | None,
    ) -> bool:
        params = {
            **self._attempt(claim),
            "new_status": NotificationStatus.FAILED if final else NotificationStatus.RETRYING,
            "error": last_error,
            "delivered": channels,
            "now": now,
            "retry_by": None if final else next_attempt_at,
        }
        return self._finished(self._session.execute(_RECORD_FAILURE, params))

    def record_cancelled(self, claim: ClaimedNotification, *, now: datetime) -> bool:
        return self._finished(self._session.execute(_RECORD_CANCELLED, {**self._attempt(claim), "now": now}))

    @staticmethod
    def _attempt(claim: ClaimedNotification) -> dict[str, object]:
        return {"notification_id": claim.id, "attempt": claim.attempt}

    @staticmethod
    def _finished(result: object) -> bool:
        return bool(getattr(result, "rowcount", 0))

    def take_due_for_relay(self, *, now: datetime, until: datetime, limit: int) -> Sequence[str]:
        """Postpone up to ``limit`` overdue notifications to ``until`` and return their ids.

        The conditional UPDATE lets only one of two concurrent relays take a
        row. An expired claim is released (back to ``queued``) so the next
        attempt can claim it.
        """
        due = (
            select(Notification.id)
            .where(Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        )
        taken = self._session.execute(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()), Notification.next_attempt_at <= now)
            .values(
                status=case(
                    (Notification.status == NotificationStatus.SENDING, NotificationStatus.QUEUED),
                    else_=Notification.status,
                ),
                next_attempt_at=until,
                updated_at=now,
            )
            .returning(Notification.id)
        )
        return taken.scalars().all()


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return bool(diag.constraint_name == constraint)
    return sqlite_column in str(error.orig)


class IdempotencyKeyRepository:
    """The ``idempotency_keys`` table: one row per (principal, key)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, principal: str, key: str) -> IdempotencyRecord | None:
        # A fresh SELECT, never the identity map: after losing an insert race the winner's row must be read.
        query = select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
        return self._session.scalars(query, execution_options={"populate_existing": True}).one_or_none()

    def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a row unless one with its (principal, key) exists; True if this one went in.

        On PostgreSQL a concurrent insert of the same key makes this wait until
        that transaction ends, so the loser then sees the winner's row.
        """
        # The engine has loaded its own dialect already; importing the other would cost cold-start time.
        if self._session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
        statement = (
            dialect.insert(IdempotencyRecord)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
        # RETURNING yields the row only if it went in (rowcount is not reliable across drivers here).
        return self._session.execute(statement).first() is not None

    def complete(self, principal: str, key: str, *, patient_id: int, result: str) -> None:
        self._session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
            .values(patient_id=patient_id, result=result),
            execution_options={"synchronize_session": False},
        )

    def delete_expired(self, now: datetime, *, principal: str | None = None, key: str | None = None) -> int:
        """Delete expired rows: all of them, or the one of (principal, key)."""
        statement = delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
        if principal is not None and key is not None:
            statement = statement.where(
                IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
            )
        result = self._session.execute(statement, execution_options={"synchronize_session": False})
        return int(result.rowcount)  # type: ignore[attr-defined]

    def forget_patient(self, patient_id: int) -> None:
        """Drop the replayable copies of a deleted patient's data."""
        self._session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.patient_id == patient_id),
            execution_options={"synchronize_session": False},
        )


class AuditEventRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def newest_first(
        self,
        *,
        limit: int,
        before_id: int | None = None,
        patient_id: int | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        """Up to ``limit`` events matching every given filter, newest (highest id) first.

        ``since`` is inclusive and ``until`` exclusive; ``before_id`` is the keyset cursor.
        """
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        if patient_id is not None:
            query = query.where(AuditEvent.patient_id == patient_id)
        if principal is not None:
            query = query.where(AuditEvent.principal == principal)
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEvent.occurred_at < until)
        return self._session.scalars(query).all()
