"""Client input: the one declaration of each field and parameter.

Each declaration holds the field's limits and rules once; the parsers below
enforce them and ``json_schema()`` publishes them in the OpenAPI document
(``chalicelib.http.openapi``), so the document cannot drift from what is enforced.

Validators for email and phone are imported on first use so that reads,
which never validate, do not pay for them at cold start.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.errors import MalformedRequest, UnacceptableValue, ValidationFailed

# C0 and C1 controls, and the bidirectional embeddings, overrides and isolates that reorder how
# the text around them is shown (CVE-2021-42574, "Trojan Source"): a stored name must display as
# what it is.
REFUSED_CHARACTERS = r"\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069"
# The whitespace str.strip() removes, but for the controls above.
SPACES = r"\u0020\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
# What shows nothing on its own: spaces, the soft hyphen, zero-width and other format characters,
# variation selectors, Hangul fillers, the braille blank. Only BMP ranges, written as \u escapes, so
# that ECMA-262 (the document's regex dialect), Python's re and Rust's regex read the patterns
# alike (a JSON Schema pattern cannot name astral characters portably).
INVISIBLE_CHARACTERS = (
    SPACES + r"\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2060-\u2064"
    r"\u206A-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB"
)
# None of the refused characters, and at least one visible one. The classes before and after the
# first visible character do not overlap, so matching never backtracks.
VISIBLE_TEXT = (
    rf"^[{INVISIBLE_CHARACTERS}]*[^{INVISIBLE_CHARACTERS}{REFUSED_CHARACTERS}][^{REFUSED_CHARACTERS}]*$"
)
_EMAIL_PART = rf"[^@{INVISIBLE_CHARACTERS}{REFUSED_CHARACTERS}]+"
# The shape of an address (something@something, nothing invisible); email-validator decides the rest.
EMAIL_SHAPE = rf"^[{SPACES}]*{_EMAIL_PART}@{_EMAIL_PART}[{SPACES}]*$"
# Digits, an optional leading +, and the usual separators; phonenumbers decides the rest. No two
# parts can take the same character, so matching never backtracks far.
_PHONE_SEPARATORS = r"[ ().\-/]"
PHONE_SHAPE = (
    rf"^[{SPACES}]*(?:\+{_PHONE_SEPARATORS}*|[().\-/]{_PHONE_SEPARATORS}*)?"
    rf"[0-9](?:{_PHONE_SEPARATORS}*[0-9])*[{SPACES}]*$"
)
# Lone surrogates (a JSON "\ud800" decodes to one): no database can store them as UTF-8. A pattern
# cannot refuse them portably (ECMA-262 sees astral characters as surrogate pairs, Rust's regex
# refuses surrogates in a pattern), and they are not Unicode text, so no schema admits them.
_REFUSED_OR_SURROGATE = re.compile(rf"[{REFUSED_CHARACTERS}\ud800-\udfff]")
# Unknown field names are repeated in the error only when they look like field names.
SHOWN_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


@dataclass(frozen=True)
class TextField:
    """A string field of the patient body: its schema is what ``parse`` refuses with a 400.

    A value the schema admits may still be refused by the field's own validator (an email
    address, a phone number): that is a 422, ``UnacceptableValue``.
    """

    name: str
    max_length: int
    description: str
    example: str
    format: str | None = None
    nullable: bool = False
    pattern: str = VISIBLE_TEXT
    # Why a value that breaks ``pattern`` (and has no control character) is refused.
    pattern_rule: str = "must contain a visible character"

    def parse(self, value: Any) -> str:
        """Return the value trimmed. Raises ValidationFailed when it breaks ``json_schema()``."""
        if not isinstance(value, str):
            raise ValidationFailed(f"{self.name} must be a string", field=self.name)
        if not value:
            raise ValidationFailed(f"{self.name} must not be empty", field=self.name)
        if len(value) > self.max_length:
            raise ValidationFailed(
                f"{self.name} must be at most {self.max_length} characters", field=self.name
            )
        if _REFUSED_OR_SURROGATE.search(value):
            raise ValidationFailed(f"{self.name} must not contain control characters", field=self.name)
        if not _compiled(self.pattern).fullmatch(value):
            raise ValidationFailed(f"{self.name} {self.pattern_rule}", field=self.name)
        return value.strip()

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": ["string", "null"] if self.nullable else "string",
            "minLength": 1,
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "description": self.description,
            "examples": [self.example],
        }
        if self.format:
            schema["format"] = self.format
        return schema


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """A published pattern as the parsers apply it: to the whole value (``$`` ends it)."""
    return re.compile(pattern)


@dataclass(frozen=True)
class IntegerParameter:
    """A decimal integer in a query string or path, e.g. ``page`` or ``after``."""

    name: str
    minimum: int
    maximum: int
    description: str
    default: int | None = None

    def value_of(self, raw: str) -> int | None:
        """The value, or None when ``raw`` is not a plain decimal integer within the limits."""
        if not raw.isascii() or not raw.isdigit() or self._too_large(raw):
            return None
        value = int(raw)
        return value if value >= self.minimum else None

    def parse(self, raw: str | None) -> int | None:
        """Return the value (the default when absent). Raises ValidationFailed naming the parameter."""
        if raw is None:
            return self.default
        value = self.value_of(raw)
        if value is not None:
            return value
        if raw.isascii() and raw.isdigit() and self._too_large(raw):
            raise ValidationFailed(f"{self.name} must be at most {self.maximum}", field=self.name)
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            self.minimum, f"an integer of at least {self.minimum}"
        )
        raise ValidationFailed(f"{self.name} must be {kind}", field=self.name)

    def parse_or_default(self, raw: str | None) -> int:
        """``parse`` for parameters that have a default."""
        value = self.parse(raw)
        if value is None:
            raise TypeError(f"{self.name} has no default")
        return value

    def _too_large(self, digits: str) -> bool:
        # Compare lengths first: int() of a very long string is slow, and refused past 4,300 digits.
        significant = digits.lstrip("0")
        limit = str(self.maximum)
        return len(significant) > len(limit) or (len(significant) == len(limit) and significant > limit)

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.default is not None:
            schema["default"] = self.default
        return schema


class QueryParameter(Protocol):
    """What the OpenAPI document needs of a query parameter."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def json_schema(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TextParameter:
    """A short string in a query string, e.g. ``principal``: the rules of ``VISIBLE_TEXT``."""

    name: str
    max_length: int
    description: str

    def parse(self, raw: str | None) -> str | None:
        """Return the value (None when absent). Raises ValidationFailed naming the parameter."""
        if raw is None:
            return None
        if not raw or len(raw) > self.max_length or not _compiled(VISIBLE_TEXT).fullmatch(raw):
            raise ValidationFailed(
                f"{self.name} must be 1 to {self.max_length} characters, one of them visible, and no"
                " control characters",
                field=self.name,
            )
        return raw

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": VISIBLE_TEXT}


@dataclass(frozen=True)
class ChoiceParameter:
    """One of a fixed set of words in a query string, e.g. a status."""

    name: str
    choices: tuple[str, ...]
    default: str
    description: str

    def parse(self, raw: str | None) -> str:
        """Return the value (the default when absent). Raises ValidationFailed naming the parameter."""
        if raw is None:
            return self.default
        if raw not in self.choices:
            raise ValidationFailed(f"{self.name} must be one of: {', '.join(self.choices)}", field=self.name)
        return raw

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "default": self.default}


# A date, or a date and time to the minute, second or microsecond, with an optional offset.
TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
_OFFSET_MINUTES = re.compile(r"[+-][0-9]{2}:([0-9]{2})$")


@dataclass(frozen=True)
class TimestampParameter:
    """An ISO-8601 date or date-time in a query string; without an offset it is read as UTC."""

    name: str
    description: str
    max_length = 40

    def parse(self, raw: str | None) -> datetime | None:
        """Return naive UTC (None when absent).

        Raises ValidationFailed when ``raw`` breaks the published pattern, UnacceptableValue when
        it fits but names no moment (February 30, hour 25, or past year 9999 once moved to UTC).
        """
        if raw is None:
            return None
        if len(raw) > self.max_length or not _compiled(TIMESTAMP).fullmatch(raw):
            raise ValidationFailed(
                f"{self.name} must be an ISO-8601 date or date-time, e.g. 2026-01-31T09:30:00Z",
                field=self.name,
            )
        offset = _OFFSET_MINUTES.search(raw)
        try:
            if offset and int(offset.group(1)) >= 60:
                raise ValueError(raw)
            value = datetime.fromisoformat(raw)
            # An offset can carry a date past year 1 or 9999 once moved to UTC (OverflowError).
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        except (ValueError, OverflowError):
            raise UnacceptableValue(
                f"{self.name} is not a date and time that exists", field=self.name
            ) from None

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": self.max_length,
            "pattern": TIMESTAMP,
            "examples": ["2026-01-31T09:30:00Z"],
        }


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

# The largest id a table hands out: PostgreSQL's bigint (SQLite's integer is as wide).
MAX_ID = 2**63 - 1
PATIENT_ID = IntegerParameter("patient_id", 1, MAX_ID, "The patient's id.")


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


def parse_patient_id(raw: str) -> int | None:
    """Path ids that are not positive 63-bit integers name no patient."""
    return PATIENT_ID.value_of(raw)
