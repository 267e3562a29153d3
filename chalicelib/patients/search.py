"""Patient search: the body of ``POST /patients/search`` declared once, parsed, and run as one read.

Criteria (name, email, phone, created_since, updated_since) combine with AND; the answer is a page
in id order with the cursor of the next one. Values are matched as they are stored: the name by the
prefixes of its words without case or accents (``chalicelib.patients.names``), the email by the key
of the uniqueness rule, the phone by its E.164 form. An email or phone of the right shape that its
own check refuses is a 422, as on create.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.errors import MalformedRequest, ValidationFailed
from chalicelib.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE
from chalicelib.patients.fields import EMAIL, NAME, PHONE, parse_email, parse_phone
from chalicelib.patients.names import name_words
from chalicelib.patients.queries import PatientSearch
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.storage.models import PatientRecord
from chalicelib.validation import (
    INVISIBLE_CHARACTERS,
    MAX_ID,
    REFUSED_CHARACTERS,
    SHOWN_FIELD_NAME,
    TimestampParameter,
)

# At least two visible characters ("at least 2 characters in all"): the first two classes do not
# overlap with what follows each, so matching never backtracks far.
TWO_VISIBLE = (
    rf"^[{INVISIBLE_CHARACTERS}]*[^{INVISIBLE_CHARACTERS}{REFUSED_CHARACTERS}]"
    rf"[{INVISIBLE_CHARACTERS}]*[^{INVISIBLE_CHARACTERS}{REFUSED_CHARACTERS}][^{REFUSED_CHARACTERS}]*$"
)
NAME_QUERY = dataclasses.replace(
    NAME,
    description="Words, each the start of a word of the name, in any order, regardless of case and"
    " accents (`jo do` finds John Doe and Jöhn Dőe); at least 2 visible characters. Punctuation"
    " separates words; apostrophes are ignored (`obr` finds O'Brien).",
    example="jo do",
    pattern=TWO_VISIBLE,
    pattern_rule="must contain at least 2 visible characters",
)
EMAIL_QUERY = dataclasses.replace(
    EMAIL,
    description="The patient's email, as the uniqueness rule compares it (regardless of case).",
)
PHONE_QUERY = dataclasses.replace(
    PHONE,
    nullable=False,
    description="The patient's phone, compared in E.164 form: `(123) 456-7890` finds `123-456-7890`"
    " (without a leading + it is read in the deployment's default region).",
)
CREATED_SINCE = TimestampParameter(
    "created_since", "Patients created at or after this moment (without an offset: UTC)."
)
UPDATED_SINCE = TimestampParameter(
    "updated_since", "Patients changed (or created) at or after this moment (without an offset: UTC)."
)
CRITERIA = (NAME_QUERY.name, EMAIL_QUERY.name, PHONE_QUERY.name, CREATED_SINCE.name, UPDATED_SINCE.name)
PER_PAGE = "per_page"
AFTER = "after"
SEARCH_FIELDS = (*CRITERIA, PER_PAGE, AFTER)


@dataclass(frozen=True)
class SearchPage:
    per_page: int
    patients: Sequence[PatientRecord]
    next_after: int | None  # the cursor of the following page; None on the last page


def search_body_schema() -> dict[str, Any]:
    """The JSON schema of the body, as ``search_patients`` enforces it."""
    return {
        "type": "object",
        "description": "At least one criterion; all those given must hold.",
        "properties": {
            NAME_QUERY.name: {**NAME_QUERY.json_schema(), "minLength": 2},
            EMAIL_QUERY.name: EMAIL_QUERY.json_schema(),
            PHONE_QUERY.name: PHONE_QUERY.json_schema(),
            CREATED_SINCE.name: {**CREATED_SINCE.json_schema(), "description": CREATED_SINCE.description},
            UPDATED_SINCE.name: {**UPDATED_SINCE.json_schema(), "description": UPDATED_SINCE.description},
            PER_PAGE: {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PER_PAGE,
                "default": DEFAULT_PER_PAGE,
                "description": "Patients per page.",
            },
            AFTER: {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_ID,
                "description": "The previous answer's `next`: patients whose id is greater than this.",
            },
        },
        "anyOf": [{"required": [name]} for name in CRITERIA],
        "additionalProperties": False,
        "examples": [{"name": "jo do", "per_page": 20}, {"phone": "(123) 456-7890"}],
    }


def search_patients(
    reads: ReadTransaction, payload: Any, *, phone_region: str, durable_audit: bool = True
) -> SearchPage:
    """One page of the patients matching every criterion of ``payload``, in id order, in one read.

    The read, the request's audit row and the page's disclosures are one statement on PostgreSQL
    (``ReadTransaction.disclosing``; ``durable_audit`` as in ``get_patient``). Raises MalformedRequest
    (not an object), ValidationFailed naming the field (no criterion, an unknown field, a value
    breaking the schema), UnacceptableValue (an email or phone its own check refuses, a timestamp
    that names no moment).
    """
    fields = _check_object(payload)
    per_page = _integer(fields, PER_PAGE, 1, MAX_PER_PAGE, DEFAULT_PER_PAGE)
    after = _integer(fields, AFTER, 0, MAX_ID, 0, nullable=True)
    criteria = _criteria(fields, phone_region)
    rows: list[PatientRecord] = []
    if criteria is not None:
        with reads.disclosing(durable=durable_audit) as read:
            # One row more than the page holds tells whether a next page exists; it is not disclosed.
            rows = read.patients.shown_search(criteria, after=after, shown=per_page)
    shown = rows[:per_page]
    return SearchPage(per_page, shown, shown[-1].id if len(rows) > per_page else None)


def _check_object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedRequest("Request body must be a JSON object")
    for key in payload:
        if key not in SEARCH_FIELDS:
            if SHOWN_FIELD_NAME.fullmatch(key):
                raise ValidationFailed(f"Unknown field: {key}", field=key)
            raise ValidationFailed("Unknown field (its name is not a plain field name)")
    if not any(name in payload for name in CRITERIA):
        raise ValidationFailed(f"Provide at least one of: {', '.join(CRITERIA)}")
    return payload


def _integer(
    fields: Mapping[str, Any], name: str, low: int, high: int, default: int, *, nullable: bool = False
) -> int:
    value = fields.get(name, default)
    if value is None and nullable:
        return default
    # JSON Schema counts 20.0 as an integer, and so does the document; Python's json reads a float.
    if isinstance(value, float) and value.is_integer() and low <= value <= high:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{name} must be an integer from {low} to {high}", field=name)
    return value


def _criteria(fields: Mapping[str, Any], phone_region: str) -> PatientSearch | None:
    """What to look for, as stored; None when the name has no word to match (punctuation only)."""
    prefixes: tuple[str, ...] = ()
    if NAME_QUERY.name in fields:
        words = name_words(NAME_QUERY.parse(fields[NAME_QUERY.name]))
        # Longest first: the most selective prefix drives the join where the planner cannot tell (SQLite).
        prefixes = tuple(sorted(dict.fromkeys(words), key=len, reverse=True))
    email_key = phone_e164 = None
    if EMAIL_QUERY.name in fields:
        email_key = parse_email(fields[EMAIL_QUERY.name]).lower()  # the uniqueness rule's key
    if PHONE_QUERY.name in fields:
        PHONE_QUERY.parse(fields[PHONE_QUERY.name])  # refuses null, which clears a phone on update
        phone_e164 = parse_phone(fields[PHONE_QUERY.name], phone_region)[1]
    created_since = _timestamp(CREATED_SINCE, fields)
    updated_since = _timestamp(UPDATED_SINCE, fields)
    if NAME_QUERY.name in fields and not prefixes:
        return None
    return PatientSearch(prefixes, email_key, phone_e164, created_since, updated_since)


def _timestamp(parameter: TimestampParameter, fields: Mapping[str, Any]) -> datetime | None:
    if parameter.name not in fields:
        return None
    value = fields[parameter.name]
    if not isinstance(value, str):
        raise ValidationFailed(f"{parameter.name} must be a string", field=parameter.name)
    return parameter.parse(value)
