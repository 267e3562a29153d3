"""The request and response headers of the patient routes, as OpenAPI describes them.

Each is built from the declaration its parser enforces (``chalicelib.patients.preconditions``,
``chalicelib.patients.idempotency``), so the document cannot say more or less than is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.patients.idempotency import IDEMPOTENCY_KEY
from chalicelib.patients.preconditions import (
    IF_MATCH,
    IF_NONE_MATCH,
    MAX_HEADER_LENGTH,
    TAG_CONDITION_PATTERN,
)

ETAG_HEADER: Mapping[str, Mapping[str, Any]] = {
    "ETag": {
        "description": 'The patient\'s id and version as a strong entity tag, e.g. `"7-3"` (patient 7,'
        " version 3): it never matches another patient's.",
        "schema": {"type": "string", "pattern": '^"[0-9]+-[0-9]+"$'},
    }
}


def _tag_condition(name: str, description: str) -> Mapping[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description + " A value that is neither `*` nor a list of entity tags is a 400.",
        # The pattern alone says it all; "*" is also named on its own because schemathesis's coverage
        # phase draws header values from letters and digits, so it would find no valid value to send.
        "schema": {
            "anyOf": [
                {"const": "*"},
                {"type": "string", "maxLength": MAX_HEADER_LENGTH, "pattern": TAG_CONDITION_PATTERN},
            ],
            "examples": ['"7-3"', "*"],
        },
    }


IF_MATCH_PARAMETER = _tag_condition(
    IF_MATCH,
    "Act only if the patient's current ETag is one of these (strong comparison) or, for `*`, if the"
    " patient exists; otherwise 412 and nothing changes.",
)
IF_NONE_MATCH_PARAMETER = _tag_condition(
    IF_NONE_MATCH, "Answer 304 without a body if the patient's current ETag is one of these."
)
IDEMPOTENCY_KEY_PARAMETER: Mapping[str, Any] = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": "1 to 255 printable ASCII characters, unique per intended create (a UUID does)."
    " Keys belong to the token's principal and expire after 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}


# --- The FHIR face's headers (functions/fhir_*.py; parsed by chalicelib.fhir, on first use) ------

FHIR_ETAG_HEADER: Mapping[str, Mapping[str, Any]] = {
    "ETag": {
        "description": 'The patient\'s version as FHIR writes it, a weak entity tag: `W/"3"` (its'
        " `meta.versionId`).",
        "schema": {"type": "string", "pattern": '^W/"[0-9]+"$'},
    }
}
FHIR_LOCATION_HEADER: Mapping[str, Mapping[str, Any]] = {
    "Location": {
        "description": "The version just written: `…/fhir/Patient/{id}/_history/{version}`.",
        "schema": {"type": "string"},
    }
}
FHIR_IF_MATCH_PARAMETER: Mapping[str, Any] = {
    "name": IF_MATCH,
    "in": "header",
    "required": False,
    "description": 'Change only the version named, as FHIR writes it: `W/"3"` (a strong `"3"` is'
    " read alike); otherwise 412 and nothing changes.",
    # As If-Match's: a const beside the pattern, for schemathesis's coverage phase to find a valid value.
    "schema": {
        "anyOf": [{"const": 'W/"1"'}, {"type": "string", "maxLength": 40, "pattern": '^(W/)?"[0-9]{1,10}"$'}],
        "examples": ['W/"1"'],
    },
}
FHIR_IF_NONE_EXIST_PARAMETER: Mapping[str, Any] = {
    "name": "If-None-Exist",
    "in": "header",
    "required": False,
    "description": "FHIR's conditional create: one search parameter, `identifier=<system>|<id>` (this"
    " API's system, or none) or `email=<address>`. A patient matching it is answered (200) and none"
    " is created.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 400, "examples": ["email=jane@example.com"]},
    # (400: chalicelib.fhir.requests.MAX_CONDITION_LENGTH, loaded with the FHIR face only)
}
