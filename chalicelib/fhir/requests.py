"""What FHIR handlers read from a request: the format asked for, a Patient body, FHIR's conditions."""

from __future__ import annotations

import re
from typing import Any

from chalice.app import Request

from chalicelib.errors import ValidationFailed
from chalicelib.http.endpoints import FHIR_FORMAT
from chalicelib.http.requests import read_json_object
from chalicelib.patients.preconditions import EntityTag, TagCondition, opaque_tag

IF_MATCH = "If-Match"
IF_NONE_EXIST = "If-None-Exist"
MAX_CONDITION_LENGTH = 400  # If-None-Exist's, as published
# FHIR's version tag: W/"3" (weak, as FHIR writes it) or "3".
_VERSION_TAG = re.compile(r'(?:W/)?"([0-9]{1,10})"')


def check_format(request: Request) -> None:
    """Refuse a ``_format`` other than JSON's spellings. Raises ValidationFailed."""
    query: Any = request.query_params or {}
    FHIR_FORMAT.parse(query.get(FHIR_FORMAT.name))


def read_resource(request: Request) -> Any:
    """The JSON body (application/fhir+json or application/json)."""
    return read_json_object(request)


def version_condition(request: Request, patient_id: str) -> TagCondition | None:
    """``If-Match: W/"3"`` as the patient service's condition on the patient's version (None when
    absent; an id that names no patient makes it irrelevant). Raises ValidationFailed."""
    raw = request.headers.get(IF_MATCH)
    if raw is None:
        return None
    found = _VERSION_TAG.fullmatch(raw.strip())
    if found is None:
        raise ValidationFailed('If-Match must name a version as FHIR does: W/"3"', field=IF_MATCH)
    if not patient_id.isascii() or not patient_id.isdigit():
        return None
    return TagCondition(any=False, tags=(EntityTag(opaque_tag(int(patient_id), int(found.group(1)))),))
