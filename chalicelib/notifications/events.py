"""What a notification is about and where it goes: the patient-change events and the delivery channels."""

from __future__ import annotations

PATIENT_CREATED = "patient.created"
PATIENT_UPDATED = "patient.updated"

EMAIL = "email"
SMS = "sms"


def channels_for(phone_e164: str | None) -> tuple[str, ...]:
    """The channels a patient can be reached on: email always, SMS with a phone number."""
    return (EMAIL, SMS) if phone_e164 else (EMAIL,)
