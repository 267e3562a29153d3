"""Patient input: the one definition of each field, used to validate requests.

Validators for email and phone are imported on first use so that reads,
which never validate, do not pay for them at cold start.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import MalformedRequest, ValidationFailed

NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
PHONE_MAX_LENGTH = 32


PATIENT_FIELDS = ("name", "email", "phone")
REQUIRED_ON_CREATE = ("name", "email")
# Validated column values keyed by column name; absent keys are not being changed.
PatientChanges = dict[str, Any]


def parse_patient_create(payload: Any, *, phone_region: str) -> PatientChanges:
    fields = _check_object(payload)
    for name in REQUIRED_ON_CREATE:
        if name not in fields:
            raise ValidationFailed(f"{name} is required", field=name)
    return {"phone": None, "phone_e164": None, **_parse_fields(fields, phone_region)}


def parse_patient_update(payload: Any, *, phone_region: str) -> PatientChanges:
    fields = _check_object(payload)
    if not fields:
        raise ValidationFailed("Provide at least one of: name, email, phone")
    return _parse_fields(fields, phone_region)


def _check_object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedRequest("Request body must be a JSON object")
    for key in payload:
        if key not in PATIENT_FIELDS:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise ValidationFailed(f"Unknown field: {shown}", field=shown)
    return payload


def _parse_fields(fields: Mapping[str, Any], phone_region: str) -> PatientChanges:
    changes: PatientChanges = {}
    if "name" in fields:
        changes["name"] = parse_name(fields["name"])
    if "email" in fields:
        changes["email"] = parse_email(fields["email"])
        changes["email_key"] = changes["email"].lower()
    if "phone" in fields:
        changes["phone"], changes["phone_e164"] = parse_phone(fields["phone"], phone_region)
    return changes


def _text(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    text = value.strip()
    if not text:
        raise ValidationFailed(f"{field} must not be empty", field=field)
    if len(text) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    return text


def parse_name(value: Any) -> str:
    return _text(value, "name", NAME_MAX_LENGTH)


def parse_email(value: Any) -> str:
    """Return the normalized address (domain lower-cased, Unicode NFC); syntax only, no DNS."""
    from email_validator import EmailNotValidError, validate_email

    text = _text(value, "email", EMAIL_MAX_LENGTH)
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValidationFailed("email is not a valid email address", field="email") from None


def parse_phone(value: Any, default_region: str) -> tuple[str | None, str | None]:
    """Return the number as the client wrote it (trimmed) and its E.164 form.

    ``null`` clears the phone. Numbers must be possible (right length for the
    country); numbers without a ``+`` country code are read in ``default_region``.
    """
    if value is None:
        return None, None
    import phonenumbers

    text = _text(value, "phone", PHONE_MAX_LENGTH)
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed("phone is not a valid phone number", field="phone") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationFailed("phone is not a valid phone number", field="phone")
    return text, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_positive_int(raw: str | None, *, field: str, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ValidationFailed(f"{field} must be a positive integer", field=field)
    value = int(raw)
    if value < 1:
        raise ValidationFailed(f"{field} must be a positive integer", field=field)
    if value > maximum:
        raise ValidationFailed(f"{field} must be at most {maximum}", field=field)
    return value


def parse_patient_id(raw: str) -> int | None:
    """Path ids that are not positive 63-bit integers name no patient."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value < 2**63 else None
