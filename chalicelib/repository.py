"""Queries over the patient table. Turns constraint violations into domain errors."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.models import Patient, RowCount

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
