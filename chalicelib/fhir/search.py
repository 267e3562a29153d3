"""FHIR search parameters: declared, parsed, and kept out of URLs when they carry patient data.

``parse_query`` reads ``GET /fhir/Patient``'s query (``_id``, ``_lastUpdated``, ``_count``),
``parse_form`` the form body of ``POST /fhir/Patient/_search`` (also ``identifier``, ``name``,
``family``, ``given``, ``email``, ``phone``, ``telecom``), and ``continued`` a ``next`` link's sealed
continuation (``chalicelib.fhir.cursor``); each gives a ``FhirSearch``, which
``chalicelib.fhir.searchset`` runs on the JSON API's services.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.errors import (
    NotSupported,
    PayloadTooLarge,
    UnacceptableValue,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.fhir import cursor
from chalicelib.fhir.patient import IDENTIFIER_SYSTEM
from chalicelib.paging import MAX_PER_PAGE
from chalicelib.validation import MAX_ID, TIMESTAMP, IntegerParameter, TextParameter

# name: (FHIR search parameter type, what it matches). Without patient data: in a GET query.
GET_PARAMETERS: dict[str, tuple[str, str]] = {
    "_id": ("token", "The patient's id."),
    "_lastUpdated": ("date", "Changed at or after: only the ge prefix (ge2026-01-31T09:30:00Z)."),
}
# Carrying patient data: only in the form body of POST /fhir/Patient/_search.
POST_PARAMETERS: dict[str, tuple[str, str]] = {
    "identifier": ("token", "This API's identifier: <system>|<id>, or the id alone."),
    "name": ("string", "Words, each the start of a word of the name, regardless of case and accents."),
    "family": ("string", "As name (the name is one string: family and given are not told apart)."),
    "given": ("string", "As name (the name is one string: family and given are not told apart)."),
    "email": ("token", "The email, regardless of case."),
    "phone": ("token", "The phone, compared in E.164 form."),
    "telecom": ("token", "An email (with @) or a phone; email|… or phone|… says which."),
}

COUNT = "_count"
# What the form body of POST /fhir/Patient/_search takes: every parameter, and the result ones.
FORM_PARAMETERS = (*GET_PARAMETERS, *POST_PARAMETERS, COUNT)
NAME_PARAMETERS = ("name", "family", "given")
FORM = "application/x-www-form-urlencoded"
# Declared query parameters of GET /fhir/Patient (with _format): none carries patient data.
ID_QUERY = IntegerParameter("_id", 1, MAX_ID, "The patient's id (FHIR's _id).")
COUNT_QUERY = IntegerParameter(COUNT, 1, MAX_PER_PAGE, "Patients per page.")
LAST_UPDATED_PATTERN = "^ge" + TIMESTAMP.removeprefix("^")


@dataclass(frozen=True)
class LastUpdatedParameter:
    """FHIR's ``_lastUpdated`` as the search service can answer it: ``ge`` and a moment."""

    name: str = "_lastUpdated"
    description: str = (
        "Changed at or after a moment: `ge` and an ISO-8601 date or date-time, e.g. ge2026-01-31"
        " (without an offset: UTC). Other prefixes are not supported."
    )
    max_length = 42

    def parse(self, raw: str | None) -> str | None:
        """The value as given (``_since`` takes the moment). Raises ValidationFailed off the pattern."""
        if raw is None:
            return None
        if len(raw) > self.max_length or not re.fullmatch(LAST_UPDATED_PATTERN, raw):
            raise ValidationFailed(
                "_lastUpdated must be ge and an ISO-8601 date or date-time, e.g. ge2026-01-31",
                field=self.name,
            )
        return raw

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length, "pattern": LAST_UPDATED_PATTERN}


LAST_UPDATED_QUERY = LastUpdatedParameter()
CURSOR_QUERY = TextParameter(
    cursor.CURSOR,
    cursor.MAX_CURSOR_LENGTH,
    "The opaque continuation of a `next` link (it takes no other parameter but _format).",
)
QUERY_PARAMETERS = (ID_QUERY, COUNT_QUERY, LAST_UPDATED_QUERY, CURSOR_QUERY)


@dataclass(frozen=True)
class FhirSearch:
    """A parsed search: an id (a read), or the JSON search service's criteria, or neither (the list)."""

    patient_id: int | None = None
    criteria: Mapping[str, Any] = field(default_factory=dict)
    count: int | None = None
    after: int = 0
    # From a form (or its continuation): the search service's refusals are 422s (``parse_form``).
    from_form: bool = False

    def state(self, after: int) -> dict[str, Any]:
        """What a continuation seals: this search from ``after`` on."""
        return {"c": dict(self.criteria), "n": self.count, "a": after, "f": self.from_form}


def parse_query(query: Mapping[str, str]) -> FhirSearch:
    """GET /fhir/Patient's query (its names already checked by the route). Raises ValidationFailed,
    NotSupported."""
    count = COUNT_QUERY.parse(query.get(COUNT))
    patient_id = ID_QUERY.parse(query.get(ID_QUERY.name))
    raw_since = LAST_UPDATED_QUERY.parse(query.get(LAST_UPDATED_QUERY.name))
    criteria = {"updated_since": _since(raw_since)} if raw_since is not None else {}
    return _search(patient_id, criteria, count)


def form_schema() -> dict[str, Any]:
    """The form body's schema: each parameter's value as the search service checks it."""
    from chalicelib.patients.search import EMAIL_QUERY, NAME_QUERY, PHONE_QUERY

    # name, family and given are joined into one name query, which must fit its 200 characters.
    words = {**NAME_QUERY.json_schema(), "minLength": 2, "maxLength": 66}
    own_id = "[1-9][0-9]{0,17}"
    return {
        "type": "object",
        "description": "FHIR search parameters, in the form body: they carry patient data, which never"
        " goes in a URL. A value the document admits and a rule refuses is a 422.",
        "properties": {
            "_id": {"type": "string", "pattern": f"^{own_id}$"},
            "_lastUpdated": LAST_UPDATED_QUERY.json_schema(),
            COUNT: {"type": "string", "pattern": "^(100|[1-9][0-9]?)$"},
            "identifier": {"type": "string", "pattern": f"^(({re.escape(IDENTIFIER_SYSTEM)})?[|])?{own_id}$"},
            "name": words,
            "family": words,
            "given": words,
            "email": EMAIL_QUERY.json_schema(),
            "phone": {**PHONE_QUERY.json_schema(), "type": "string"},
            "telecom": {"type": "string", "minLength": 1, "maxLength": 260},
        },
        "additionalProperties": False,
    }


def parse_form(raw: bytes | str | None, content_type: str | None, max_bytes: int) -> FhirSearch:
    """The form body of POST /fhir/Patient/_search. Raises UnsupportedMediaType, PayloadTooLarge,
    UnacceptableValue (a value refused: a form's values are strings the document cannot describe
    whole), NotSupported (a parameter, modifier, repetition or list not implemented)."""
    with values_refused_as_unacceptable():
        return _parse_form(raw, content_type, max_bytes)


@contextmanager
def values_refused_as_unacceptable() -> Iterator[None]:
    """A form's value refused by a rule (the parameters' or the search service's) is a 422: the
    form's schema cannot say all those rules, so the refusal never contradicts the document."""
    try:
        yield
    except UnacceptableValue:
        raise
    except ValidationFailed as refused:
        raise UnacceptableValue(refused.message, field=refused.field) from None


def _parse_form(raw: bytes | str | None, content_type: str | None, max_bytes: int) -> FhirSearch:
    media_type = (content_type or FORM).split(";", 1)[0].strip().lower()
    if media_type != FORM:
        raise UnsupportedMediaType(f"Content-Type must be {FORM}")
    body = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"Request body must be at most {max_bytes} bytes")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=len(FORM_PARAMETERS) * 2
        )
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailed("The form body is not valid UTF-8 x-www-form-urlencoded") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in FORM_PARAMETERS:
            shown = (
                name
                if name.replace("_", "").replace("-", "").replace(":", "").isalnum() and len(name) < 40
                else None
            )
            raise NotSupported(
                f"Search parameter not supported: {shown} (GET /fhir/metadata lists those that are)"
                if shown
                else "Search parameter not supported (GET /fhir/metadata lists those that are)",
                field=shown,
            )
        if name in values:
            raise NotSupported(f"{name} is given twice: each parameter once", field=name)
        if "," in value:
            raise NotSupported(f"{name}: lists of values (a comma) are not supported", field=name)
        values[name] = value
    return _form_search(values)


def _form_search(values: Mapping[str, str]) -> FhirSearch:
    count = COUNT_QUERY.parse(values.get(COUNT))
    patient_id = ID_QUERY.parse(values.get(ID_QUERY.name))
    if "identifier" in values:
        own = IntegerParameter("identifier", 1, MAX_ID, "").parse(own_identifier(values["identifier"]))
        if patient_id is not None and own != patient_id:
            raise NotSupported("_id and identifier name two patients", field="identifier")
        patient_id = own
    criteria: dict[str, Any] = {}
    words = [values[name] for name in NAME_PARAMETERS if name in values]
    if words:
        criteria["name"] = " ".join(words)
    for name in ("email", "phone"):
        if name in values:
            criteria[name] = values[name]
    if "telecom" in values:
        system, value = _telecom_token(values["telecom"])
        if system in criteria and criteria[system] != value:
            raise NotSupported(f"telecom and {system} name two values: give one", field="telecom")
        criteria[system] = value
    raw_since = values.get(LAST_UPDATED_QUERY.name)
    if raw_since is not None:
        criteria["updated_since"] = _since(raw_since)
    return _search(patient_id, criteria, count, from_form=True)


def _search(
    patient_id: int | None, criteria: Mapping[str, Any], count: int | None, *, from_form: bool = False
) -> FhirSearch:
    if patient_id is not None and criteria:
        raise NotSupported(
            "_id and identifier combine with no other search parameter but _count", field="_id"
        )
    return FhirSearch(patient_id=patient_id, criteria=criteria, count=count, from_form=from_form)


def _since(raw: str) -> str:
    """``ge<moment>``: the search service's ``updated_since``. Other prefixes are not supported."""
    if not raw.startswith("ge"):
        raise NotSupported("_lastUpdated supports the ge prefix only (ge2026-01-31)", field="_lastUpdated")
    return raw[2:]


def _telecom_token(token: str) -> tuple[str, str]:
    system, bar, value = token.partition("|")
    if bar:
        if system not in ("email", "phone"):
            raise NotSupported("telecom: only the email and phone systems are kept", field="telecom")
        return system, value
    return ("email" if "@" in token else "phone"), token


def continued(token: str, principal: str, secret: bytes) -> FhirSearch:
    """The search a ``next`` link's continuation carries. Raises ValidationFailed."""
    state = cursor.unseal(token, principal, secret)
    return FhirSearch(
        criteria=state.get("c") or {},
        count=state.get("n"),
        after=int(state.get("a") or 0),
        from_form=bool(state.get("f")),
    )


def own_identifier(token: str) -> str:
    """The id an identifier token names: ``<this API's system>|<id>``, ``|<id>`` or ``<id>``.
    Raises NotSupported for another system."""
    system, bar, value = token.rpartition("|")
    if bar and system not in ("", IDENTIFIER_SYSTEM):
        raise NotSupported(
            f"This server keeps no identifier but its own ({IDENTIFIER_SYSTEM})", field="identifier"
        )
    if not value:
        raise ValidationFailed("identifier needs a value", field="identifier")
    return value
