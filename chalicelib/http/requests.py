"""What handlers read from a request: its JSON body, who sent it, its id, and links back to it.

Only what the authorizer established is trusted: handlers never re-read the
``Authorization`` header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from chalice.app import Request

from chalicelib import bootstrap
from chalicelib.errors import (
    DuplicateKey,
    MalformedRequest,
    PatientDataInUrl,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.patients.phi import names_patient_data
from chalicelib.scopes import parse_scope_string
from chalicelib.validation import SHOWN_FIELD_NAME


def read_json_object(request: Request) -> Any:
    """Decode the request body as JSON. Raises MalformedRequest (DuplicateKey for a key given twice in
    one object), PayloadTooLarge, UnsupportedMediaType."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    max_body_bytes = bootstrap.settings().max_body_bytes
    if len(raw) > max_body_bytes:
        raise PayloadTooLarge(f"Request body must be at most {max_body_bytes} bytes")
    content_type = (request.headers.get("content-type") or "application/json").lower()
    media_type = content_type.split(";", 1)[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
    if not raw.strip():
        raise MalformedRequest("Request body must be a JSON object")
    try:
        return json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates
        )
    except UnicodeDecodeError:
        raise MalformedRequest("Request body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise MalformedRequest("Request body is not valid JSON") from None


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            shown = key if SHOWN_FIELD_NAME.fullmatch(key) else None
            named = f"The key {shown!r}" if shown else "A key"
            raise DuplicateKey(f"{named} appears twice in one JSON object: send it once", field=shown)
        found[key] = value
    return found


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def principal_of(request: Request) -> str:
    """The principal the authorizer established. Raises Unauthenticated."""
    authorizer = (request.context or {}).get("authorizer") or {}
    principal = authorizer.get("principal") or authorizer.get("principalId")
    if not principal:
        raise Unauthenticated("Missing or invalid bearer token")
    return str(principal)


def principal_or_none(request: Request) -> str | None:
    try:
        return principal_of(request)
    except Unauthenticated:
        return None


def scopes_of(request: Request) -> frozenset[str]:
    """The scopes the authorizer granted; none when it named none."""
    authorizer = (request.context or {}).get("authorizer") or {}
    return parse_scope_string(authorizer.get("scopes"))


def request_id_of(request: Request | None) -> str | None:
    """API Gateway's request id; else the invocation's (chalice local sets no requestId)."""
    context = getattr(request, "context", None) or {}
    request_id = context.get("requestId") or getattr(
        getattr(request, "lambda_context", None), "aws_request_id", None
    )
    return str(request_id) if request_id else None


def refuse_patient_data_in_query(request: Request) -> None:
    """One rule for every route, before any other look at the query: no parameter named like
    patient data (``chalicelib.patients.phi``), declared or not.

    Raises PatientDataInUrl naming the parameter if its name is plain; its value is never read.
    """
    for name in request.query_params or {}:
        if names_patient_data(name):
            raise PatientDataInUrl(name if SHOWN_FIELD_NAME.fullmatch(name) else None)


def refuse_undeclared_query_parameters(request: Request, declared: frozenset[str]) -> None:
    """One rule for every route: a query parameter its endpoint does not declare is a 400.

    Raises ValidationFailed naming the first such parameter, if its name is plain.
    """
    for name in request.query_params or {}:
        if name not in declared:
            if SHOWN_FIELD_NAME.fullmatch(name):
                raise ValidationFailed(f"Unknown query parameter: {name}", field=name)
            # Not repeated: it could hold control characters or anything at all.
            raise ValidationFailed("Unknown query parameter (its name is not a plain parameter name)")


def next_page_link(
    request: Request,
    default_path: str,
    cursor: tuple[str, object | None],
    per_page: int,
    kept: Mapping[str, str] | None = None,
) -> str | None:
    """The path and query of the page after this one; None when the cursor's value is None (the last page).

    ``cursor`` is the parameter that names the next page and its value; ``kept``, the query
    parameters (filters) that carry over. The path is the one the client called, so API Gateway's
    stage prefix (/api) stays in the link.
    """
    name, value = cursor
    if value is None:
        return None
    path = (request.context or {}).get("path") or default_path
    return f"{path}?{urlencode({**(kept or {}), name: value, 'per_page': per_page})}"
