"""Queries over the patient table. Turns constraint violations into domain errors."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.models import Patient

EMAIL_CONSTRAINT = "uq_patients_email_key"


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, patient_id: int, *, for_update: bool = False) -> Patient | None:
        return self._session.get(Patient, patient_id, with_for_update=for_update or None)

    def add(self, patient: Patient) -> Patient:
        self._session.add(patient)
        self.flush()
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

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(Patient)) or 0

    def page(self, *, offset: int, limit: int) -> Sequence[Patient]:
        query = select(Patient).order_by(Patient.id).offset(offset).limit(limit)
        return self._session.scalars(query).all()


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return bool(diag.constraint_name == constraint)
    return sqlite_column in str(error.orig)
