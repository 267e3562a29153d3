"""Queries over the patient, idempotency-key and audit tables. Constraint violations become domain errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.models import AuditEvent, IdempotencyRecord, Patient, RowCount

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
        """The maintained count; an exact ``count(*)`` only if the counter row is missing."""
        maintained = self._session.scalar(
            select(RowCount.row_count).where(RowCount.table_name == PATIENTS_TABLE)
        )
        if maintained is not None:
            return maintained
        return self._session.scalar(select(func.count()).select_from(Patient)) or 0

    def recount(self) -> int:
        """Set the counter from ``count(*)``: after rows were loaded or removed behind the API's back."""
        exact = self._session.scalar(select(func.count()).select_from(Patient)) or 0
        self._session.execute(
            update(RowCount).where(RowCount.table_name == PATIENTS_TABLE).values(row_count=exact),
            execution_options={"synchronize_session": False},
        )
        return exact

    def page(self, *, offset: int, limit: int) -> Sequence[Patient]:
        """``limit`` patients in id order from position ``offset``.

        The skipping happens on the primary key alone (an index-only scan on
        PostgreSQL), and only the rows returned are read in full.
        """
        first_id = select(Patient.id).order_by(Patient.id).offset(offset).limit(1).scalar_subquery()
        query = select(Patient).where(Patient.id >= first_id).order_by(Patient.id).limit(limit)
        return self._session.scalars(query).all()

    def after(self, patient_id: int, *, limit: int) -> Sequence[Patient]:
        """``limit`` patients in id order whose id is greater than ``patient_id`` (keyset paging)."""
        query = select(Patient).where(Patient.id > patient_id).order_by(Patient.id).limit(limit)
        return self._session.scalars(query).all()

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
