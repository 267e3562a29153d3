"""Patient service: the rules for creating, reading, changing and listing patients.

Each public function is one transaction. Inputs are the client's raw values;
errors are the domain errors of ``chalicelib.errors``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.config import get_settings
from chalicelib.errors import PatientNotFound
from chalicelib.models import Patient, utc_now
from chalicelib.notifications import PATIENT_CREATED, PATIENT_UPDATED, record_patient_change
from chalicelib.unit_of_work import UnitOfWork
from chalicelib.validation import (
    parse_patient_create,
    parse_patient_id,
    parse_patient_update,
    parse_positive_int,
)

MAX_PAGE_NUMBER = 2**31 - 1


@dataclass(frozen=True)
class PatientPage:
    total: int
    pages: int
    page: int
    per_page: int
    patients: Sequence[Patient]


@dataclass(frozen=True)
class PatientChange:
    patient: Patient
    notification_id: str  # the notification announcing the change, committed with it


def create_patient(payload: Any, *, correlation_id: str | None = None) -> PatientChange:
    """Validate and store a new patient with its ``patient.created`` notification.

    Raises ValidationFailed, MalformedRequest, DuplicateEmail.
    """
    values = parse_patient_create(payload, phone_region=get_settings().phone_default_region)
    now = utc_now()
    with UnitOfWork(write=True) as uow:
        patient = uow.patients.add(Patient(**values, version=1, created_at=now, updated_at=now))
        notification = record_patient_change(uow, patient, PATIENT_CREATED, correlation_id)
        uow.commit()
    return PatientChange(patient, notification.id)


def get_patient(raw_id: str) -> Patient:
    """Raises PatientNotFound, also for ids that cannot exist."""
    with UnitOfWork() as uow:
        return _existing(uow, raw_id)


def update_patient(raw_id: str, payload: Any, *, correlation_id: str | None = None) -> PatientChange:
    """Apply a partial update and record its ``patient.updated`` notification.

    Raises PatientNotFound, ValidationFailed, MalformedRequest, DuplicateEmail.
    """
    patient_id = _id_or_not_found(raw_id)
    values = parse_patient_update(payload, phone_region=get_settings().phone_default_region)
    with UnitOfWork(write=True) as uow:
        patient = _existing(uow, patient_id, for_update=True)
        for column, value in values.items():
            setattr(patient, column, value)
        # Strictly later than before, even within one clock tick.
        patient.updated_at = max(utc_now(), patient.updated_at + timedelta(microseconds=1))
        patient.version += 1
        uow.patients.flush()
        notification = record_patient_change(uow, patient, PATIENT_UPDATED, correlation_id)
        uow.commit()
    return PatientChange(patient, notification.id)


def delete_patient(raw_id: str) -> None:
    """Delete the patient and cancel its notifications not yet sent. Raises PatientNotFound."""
    with UnitOfWork(write=True) as uow:
        patient = _existing(uow, raw_id, for_update=True)
        uow.patients.delete(patient)
        uow.notifications.cancel_unsent_for_patient(patient.id, utc_now())
        uow.commit()


def list_patients(raw_page: str | None, raw_per_page: str | None) -> PatientPage:
    """One page in id order. Raises ValidationFailed for bad paging values."""
    settings = get_settings()
    page = parse_positive_int(raw_page, field="page", default=1, maximum=MAX_PAGE_NUMBER)
    per_page = parse_positive_int(
        raw_per_page, field="per_page", default=settings.default_per_page, maximum=settings.max_per_page
    )
    with UnitOfWork() as uow:
        total = uow.patients.count()
        rows = uow.patients.page(offset=(page - 1) * per_page, limit=per_page) if total else []
    return PatientPage(total, math.ceil(total / per_page), page, per_page, rows)


def _id_or_not_found(raw_id: str | int) -> int:
    patient_id = raw_id if isinstance(raw_id, int) else parse_patient_id(raw_id)
    if patient_id is None:
        raise PatientNotFound()
    return patient_id


def _existing(uow: UnitOfWork, raw_id: str | int, *, for_update: bool = False) -> Patient:
    patient = uow.patients.get(_id_or_not_found(raw_id), for_update=for_update)
    if patient is None:
        raise PatientNotFound()
    return patient
