"""Client input: the one declaration of each field and parameter.

Each declaration holds the field's limits and rules once; the parsers below
enforce them and ``json_schema()`` publishes them in the OpenAPI document
(``chalicelib.http.openapi``), so the document cannot drift from what is enforced.

The patient body's own fields are declared in ``chalicelib.patients.fields`` with these types.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.errors import UnacceptableValue, ValidationFailed

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


# The largest id a table hands out: PostgreSQL's bigint (SQLite's integer is as wide).
MAX_ID = 2**63 - 1
PATIENT_ID = IntegerParameter("patient_id", 1, MAX_ID, "The patient's id.")


def parse_patient_id(raw: str) -> int | None:
    """Path ids that are not positive 63-bit integers name no patient."""
    return PATIENT_ID.value_of(raw)
