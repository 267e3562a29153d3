"""The patient body: its three fields, declared once, parsed and published from the same declarations.

Validators for email and phone are imported on first use so that reads,
which never validate, do not pay for them at cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.errors import MalformedRequest, UnacceptableValue, ValidationFailed
from chalicelib.validation import EMAIL_SHAPE, PHONE_SHAPE, SHOWN_FIELD_NAME, TextField

NAME = TextField(
    "name",
    200,
    "Full name, with at least one visible character; surrounding whitespace is trimmed.",
    "John Doe",
)
EMAIL = TextField(
    "email",
    254,
    "Email address, unique among patients regardless of case; the domain is stored lower-cased. An"
    " address of this shape that fails the syntax check (email-validator, no DNS) is a 422.",
    "john.doe@example.com",
    format="email",
    pattern=EMAIL_SHAPE,
    pattern_rule="is not a valid email address",
)
PHONE = TextField(
    "phone",
    32,
    "Phone number as written, possible for its country; without a leading + it is read in the"
    " deployment's default region. A number of this shape that is not possible is a 422. null"
    " clears it.",
    "123-456-7890",
    nullable=True,
    pattern=PHONE_SHAPE,
    pattern_rule="must be digits, with an optional leading + and spaces or ( ) - . /",
)
PATIENT_FIELDS: Mapping[str, TextField] = {field.name: field for field in (NAME, EMAIL, PHONE)}
REQUIRED_ON_CREATE = (NAME.name, EMAIL.name)


# Validated column values keyed by column name; absent keys are not being changed.
PatientChanges = dict[str, Any]


def patient_create_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: field.json_schema() for name, field in PATIENT_FIELDS.items()},
        "required": list(REQUIRED_ON_CREATE),
        "additionalProperties": False,
    }


def patient_update_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: field.json_schema() for name, field in PATIENT_FIELDS.items()},
        "minProperties": 1,
        "additionalProperties": False,
    }


def parse_patient_create(payload: Any, *, phone_region: str) -> PatientChanges:
    fields = _check_object(payload)
    for name in REQUIRED_ON_CREATE:
        if name not in fields:
            raise ValidationFailed(f"{name} is required", field=name)
    return {"phone": None, "phone_e164": None, **_parse_fields(fields, phone_region)}


def parse_patient_update(payload: Any, *, phone_region: str) -> PatientChanges:
    fields = _check_object(payload)
    if not fields:
        raise ValidationFailed(f"Provide at least one of: {', '.join(PATIENT_FIELDS)}")
    return _parse_fields(fields, phone_region)


def _check_object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedRequest("Request body must be a JSON object")
    for key in payload:
        if key not in PATIENT_FIELDS:
            if SHOWN_FIELD_NAME.fullmatch(key):
                raise ValidationFailed(f"Unknown field: {key}", field=key)
            # Not repeated: it could hold control characters, lone surrogates or anything at all.
            raise ValidationFailed("Unknown field (its name is not a plain field name)")
    return payload


def _parse_fields(fields: Mapping[str, Any], phone_region: str) -> PatientChanges:
    changes: PatientChanges = {}
    if NAME.name in fields:
        changes["name"] = parse_name(fields[NAME.name])
        # Searched by: the database indexes them in the same statement. Imported here, with the
        # first write: a cold start that answers a read does not load it.
        from chalicelib.patients.names import name_prefixes_json

        changes["name_prefixes"] = name_prefixes_json(changes["name"])
    if EMAIL.name in fields:
        changes["email"] = parse_email(fields[EMAIL.name])
        changes["email_key"] = changes["email"].lower()
    if PHONE.name in fields:
        changes["phone"], changes["phone_e164"] = parse_phone(fields[PHONE.name], phone_region)
    return changes


def parse_name(value: Any) -> str:
    return NAME.parse(value)


def parse_email(value: Any) -> str:
    """Return the normalized address (domain lower-cased, Unicode NFC); syntax only, no DNS.

    Raises ValidationFailed when the value breaks the schema, UnacceptableValue when
    email-validator refuses an address of the right shape.
    """
    from email_validator import EmailNotValidError, validate_email

    text = EMAIL.parse(value)
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise UnacceptableValue("email is not a valid email address", field=EMAIL.name) from None


def parse_phone(value: Any, default_region: str) -> tuple[str | None, str | None]:
    """Return the number as the client wrote it (trimmed) and its E.164 form.

    ``null`` clears the phone. Numbers must be possible (right length for the
    country); numbers without a ``+`` country code are read in ``default_region``.
    Raises ValidationFailed when the value breaks the schema, UnacceptableValue
    when a number of the right shape is not possible.
    """
    if value is None and PHONE.nullable:
        return None, None
    import phonenumbers

    text = PHONE.parse(value)
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise UnacceptableValue("phone is not a valid phone number", field=PHONE.name) from None
    if not phonenumbers.is_possible_number(number):
        raise UnacceptableValue("phone is not a valid phone number", field=PHONE.name)
    return text, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
