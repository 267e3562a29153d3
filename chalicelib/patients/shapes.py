"""The JSON shapes of patients, as the API answers them (and as ``openapi_schemas`` documents them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.shapes import iso_utc, page_json

if TYPE_CHECKING:
    from chalicelib.patients.search import SearchPage
    from chalicelib.patients.service import PatientChange, PatientPage
    from chalicelib.storage.models import Patient, PatientRecord


def patient_json(patient: Patient | PatientRecord) -> dict[str, Any]:
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email,
        "phone": patient.phone,
        "created_at": iso_utc(patient.created_at),
        "updated_at": iso_utc(patient.updated_at),
    }


def patient_change_json(message: str, change: PatientChange) -> dict[str, Any]:
    """The seed's create/update answer, plus the id of the notification the change produced."""
    return {
        "message": message,
        "patient": patient_json(change.patient),
        "notification_id": change.notification_id,
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
