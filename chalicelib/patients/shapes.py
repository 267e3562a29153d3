"""The JSON shapes of patients, as the API answers them (and as ``openapi_schemas`` documents them).

Minimum necessary: which of a patient's fields a caller sees is decided here, once
(``shows_patient_data``). A patient's name, email and phone reach only tokens that may read
patients; a token that may only write is told what it needs to go on (the id, the version, the
timestamps, and the notification's id and status), never the data it sent or what is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.scopes import PATIENTS_READ
from chalicelib.shapes import iso_utc, page_json

if TYPE_CHECKING:
    from chalicelib.patients.search import SearchPage
    from chalicelib.patients.service import PatientChange, PatientPage
    from chalicelib.storage.models import Patient, PatientRecord


def shows_patient_data(scopes: frozenset[str]) -> bool:
    """Whether a caller holding ``scopes`` may see a patient's name, email and phone."""
    return PATIENTS_READ in scopes


def patient_json(patient: Patient | PatientRecord) -> dict[str, Any]:
    """The patient in full: for answers to tokens that may read patients (every read route needs it)."""
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email,
        "phone": patient.phone,
        "created_at": iso_utc(patient.created_at),
        "updated_at": iso_utc(patient.updated_at),
    }


def patient_receipt_json(patient: Patient) -> dict[str, Any]:
    """What a token that may not read patients is shown of one it created or changed: no patient data."""
    return {
        "id": patient.id,
        "version": patient.version,
        "created_at": iso_utc(patient.created_at),
        "updated_at": iso_utc(patient.updated_at),
    }


def patient_change_json(message: str, change: PatientChange, scopes: frozenset[str]) -> dict[str, Any]:
    """The answer to a create, update or replay for a caller holding ``scopes``.

    With ``patients:read``: the seed's answer, plus the id of the notification the change produced.
    Without: the patient's receipt, the notification's id and its status (the caller cannot read
    ``GET /notifications/{id}``).
    """
    if shows_patient_data(scopes):
        return {
            "message": message,
            "patient": patient_json(change.patient),
            "notification_id": change.notification_id,
        }
    return {
        "message": message,
        "patient": patient_receipt_json(change.patient),
        "notification_id": change.notification_id,
        "notification_status": change.notification_status,
    }


def patient_page_json(page: PatientPage) -> dict[str, Any]:
    return page_json(page, "patients", [patient_json(patient) for patient in page.patients])


def search_page_json(page: SearchPage) -> dict[str, Any]:
    """A search's page: the list envelope with the cursor of the next page (an id), no total."""
    return {
        "patients": [patient_json(patient) for patient in page.patients],
        "per_page": page.per_page,
        "next": page.next_after,
    }
