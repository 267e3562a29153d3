"""The patient service on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib import bootstrap
from chalicelib.errors import DuplicateEmail, PatientNotFound
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork


@pytest.fixture
def service(configured_app: str) -> str:
    return configured_app


def test_updated_at_advances_even_within_one_clock_tick(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = datetime(2026, 1, 1, 12, 0, 0)
    monkeypatch.setattr(patients, "utc_now", lambda: frozen)
    created = patients.create_patient(
        UnitOfWork(), {"name": "A", "email": "a@example.com"}, settings=bootstrap.patient_settings()
    ).patient

    first = patients.update_patient(
        UnitOfWork(), str(created.id), {"name": "B"}, settings=bootstrap.patient_settings()
    ).patient
    second = patients.update_patient(
        UnitOfWork(), str(created.id), {"name": "C"}, settings=bootstrap.patient_settings()
    ).patient

    assert created.created_at == first.created_at == second.created_at == frozen
    assert created.updated_at < first.updated_at < second.updated_at


def test_failed_update_changes_nothing(service: str) -> None:
    patients.create_patient(
        UnitOfWork(), {"name": "A", "email": "a@example.com"}, settings=bootstrap.patient_settings()
    )
    other = patients.create_patient(
        UnitOfWork(), {"name": "B", "email": "b@example.com"}, settings=bootstrap.patient_settings()
    ).patient

    with pytest.raises(DuplicateEmail):
        patients.update_patient(
            UnitOfWork(),
            str(other.id),
            {"name": "Changed", "email": "A@example.com"},
            settings=bootstrap.patient_settings(),
        )

    assert patients.get_patient(ReadTransaction(), str(other.id)).name == "B"


def test_delete_unknown_raises(service: str) -> None:
    with pytest.raises(PatientNotFound):
        patients.delete_patient(UnitOfWork(), "12345")


def test_version_counts_changes(service: str) -> None:
    created = patients.create_patient(
        UnitOfWork(), {"name": "A", "email": "a@example.com"}, settings=bootstrap.patient_settings()
    ).patient

    updated = patients.update_patient(
        UnitOfWork(), str(created.id), {"name": "B"}, settings=bootstrap.patient_settings()
    ).patient

    assert (created.version, updated.version) == (1, 2)
