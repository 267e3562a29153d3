"""The OpenAPI 3.1 document of the API, built from the routes Chalice knows.

Each handler in ``functions/`` carries an ``@endpoint(...)`` (``chalicelib.http.endpoints``)
naming its scope and audit action and describing its answers and the domain
errors it can raise; error statuses come from the one table in
``chalicelib.http.errors``, schemas from ``chalicelib.http.openapi_schemas``.
Building walks ``app.routes``, so a route without a declaration fails loudly
instead of going undocumented. The document is built on first request and kept.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from chalice.app import Chalice

from chalicelib import bootstrap
from chalicelib.config.process_cache import process_cache
from chalicelib.errors import (
    AuditUnavailable,
    DatabaseUnavailable,
    DomainError,
    DuplicateKey,
    InsufficientScope,
    MalformedRequest,
    PatientDataInUrl,
    PayloadTooLarge,
    RateLimited,
    SchemaNotMigrated,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.http.endpoints import (
    FHIR_FACE,
    FHIR_JSON,
    FORM,
    JSON,
    TAG_DESCRIPTIONS,
    Endpoint,
    Reply,
    endpoint_of,
)
from chalicelib.http.errors import INTERNAL_ERROR_CODE, status_for
from chalicelib.http.gateway_responses import UNAUTHORIZED_BODY, UNAUTHORIZED_STATUS
from chalicelib.http.openapi_headers import FHIR_ETAG_HEADER
from chalicelib.http.openapi_schemas import ERROR_DESCRIPTIONS, ERROR_HEADERS, component_schemas, ref
from chalicelib.scopes import ALL_SCOPES
from chalicelib.validation import IntegerParameter, QueryParameter

TITLE = "Telehealth patient API"
VERSION = "1.0.0"
BEARER_SCHEME = "bearerToken"
# Raised by chalicelib.http.requests.read_json_object for every route that takes a JSON body.
BODY_ERRORS: tuple[type[DomainError], ...] = (
    DuplicateKey,
    MalformedRequest,
    DuplicateKey,
    PayloadTooLarge,
    UnsupportedMediaType,
)
# Raised by chalicelib.http.routes.admit on every protected route, before its handler.
ADMISSION_ERRORS: tuple[type[DomainError], ...] = (RateLimited, InsufficientScope)
PATH_PARAMETER = re.compile(r"{([^}]+)}")


class UndocumentedRoute(LookupError):
    """A registered route whose handler has no ``@endpoint``, or misses a parameter."""


@process_cache(maxsize=4)
def document_json(app: Chalice) -> str:
    return json.dumps(build_document(app), separators=(",", ":"))


def build_document(app: Chalice) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            declared = endpoint_of(entry.view_function)
            if declared is None:
                raise UndocumentedRoute(f"{method} {path} has no @endpoint")
            scope = declared.scope if entry.authorizer else None
            paths.setdefault(path, {})[method.lower()] = _operation_object(
                path, entry.view_function.__name__, declared, scope
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Patient records for telehealth clinics. Every patient route needs"
            " `Authorization: Bearer <token>` for a token holding the route's scope (listed in its"
            " `security`); errors share one body shape (`Error`), an `OperationOutcome` on the FHIR routes"
            " (`/fhir`, the same patients as FHIR R4 resources). Each token's requests are"
            " rate-limited: over the limit, a 429 says when to retry (`Retry-After`).",
        },
        # Relative to this document, so the stage prefix of API Gateway (/api) is kept.
        "servers": [{"url": "."}],
        "security": [{BEARER_SCHEME: []}],
        "tags": [
            {"name": name, "description": description} for name, description in TAG_DESCRIPTIONS.items()
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token issued to the clinic (API_TOKENS / API_TOKEN_SHA256), or a"
                    " signed JWT whose `scope` claim lists its scopes, ours or SMART on FHIR's mapped onto"
                    " them (`system/Patient.rs`, `system/Patient.cud`, ...; docs/api.md). Scopes: "
                    + ", ".join(f"`{scope}`" for scope in sorted(ALL_SCOPES))
                    + ".",
                }
            },
            "schemas": component_schemas(),
        },
    }


def _operation_object(path: str, operation_id: str, declared: Endpoint, scope: str | None) -> dict[str, Any]:
    """``scope``: what a token needs for this route; None for a public one."""
    parameters = [_path_parameter(path, name, declared) for name in PATH_PARAMETER.findall(path)]
    parameters += [_query_parameter(parameter) for parameter in declared.query_parameters()]
    parameters += [dict(header) for header in declared.headers]
    result: dict[str, Any] = {
        "operationId": operation_id,
        "summary": declared.summary,
        "tags": [declared.tag],
    }
    if declared.description:
        result["description"] = declared.description
    if parameters:
        result["parameters"] = parameters
    if declared.request_body:
        result["requestBody"] = {
            "required": declared.request_body_required,
            "description": f"{_body_kind(declared)} of at most {bootstrap.settings().max_body_bytes} bytes.",
            "content": {
                media_type: {"schema": ref(declared.request_body)}
                for media_type in declared.request_media_types
            },
        }
    # OpenAPI 3.1 lets a bearer requirement list the roles (here, scopes) it needs.
    result["security"] = [{BEARER_SCHEME: [scope]}] if scope else []
    responses = {str(status): _reply_object(reply) for status, reply in declared.replies.items()}
    responses.update(_error_responses(declared, protected=scope is not None))
    result["responses"] = dict(sorted(responses.items()))
    return result


def _path_parameter(path: str, name: str, declared: Endpoint) -> dict[str, Any]:
    parameter = declared.path_parameters.get(name)
    if parameter is None:
        raise UndocumentedRoute(f"{path}: path parameter {name} is not described")
    if isinstance(parameter, IntegerParameter):
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": parameter.description,
            "schema": parameter.json_schema(),
        }
    return {"name": name, "in": "path", "required": True, **parameter}


def _query_parameter(parameter: QueryParameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "in": "query",
        "required": False,
        "description": parameter.description,
        "schema": parameter.json_schema(),
    }


def _reply_object(reply: Reply) -> dict[str, Any]:
    result: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        result["headers"] = {name: dict(header) for name, header in reply.headers.items()}
    if reply.links:
        result["links"] = {name: dict(link) for name, link in reply.links.items()}
    if reply.schema is not None:
        schema = ref(reply.schema) if isinstance(reply.schema, str) else dict(reply.schema)
        result["content"] = {media_type: {"schema": schema} for media_type in reply.media_types}
    return result


def _error_responses(declared: Endpoint, protected: bool) -> dict[str, Any]:
    codes: dict[int, list[str]] = defaultdict(list)
    errors = list(declared.errors) + (list(BODY_ERRORS) if declared.request_body else [])
    # chalicelib.http.routes refuses, on every route, a query parameter named like patient data
    # (first), and one the endpoint does not declare.
    errors += [PatientDataInUrl, ValidationFailed]
    # chalicelib.http.routes answers 503 when the audit row of an audited route cannot be written.
    errors += [AuditUnavailable] if declared.audit is not None else []
    # ... and when a statement finds no table or column, or the database cannot be reached (or its
    # connection is lost during a COMMIT, or again after running the work once more): every route
    # behind a token reads the database.
    errors += [SchemaNotMigrated, DatabaseUnavailable] if protected else []
    for error in errors:
        codes[status_for(error)].append(error.code)
    if protected:
        codes[UNAUTHORIZED_STATUS].append(UNAUTHORIZED_BODY["code"])
        for error in ADMISSION_ERRORS:
            codes[status_for(error)].append(error.code)
    codes[500].append(INTERNAL_ERROR_CODE)
    return {
        str(status): _error_object(status, sorted(set(found)), declared.face)
        for status, found in codes.items()
    }


def _body_kind(declared: Endpoint) -> str:
    return "A form" if declared.request_media_types == (FORM,) else "A JSON object"


def _outcome_codes(codes: list[str]) -> dict[str, Any]:
    """The JSON API's codes an OperationOutcome's issue carries in ``details.coding``."""
    coding = {"type": "array", "items": {"properties": {"code": {"enum": codes}}}}
    details = {"type": "object", "properties": {"coding": coding}}
    return {"properties": {"issue": {"items": {"properties": {"details": details}}}}}


def _error_object(status: int, codes: list[str], face: str) -> dict[str, Any]:
    schema = {"allOf": [ref("Error"), {"properties": {"code": {"enum": codes}}}]}
    outcome_schema = {"allOf": [ref("OperationOutcome"), _outcome_codes(codes)]}
    content: dict[str, Any] = {JSON: {"schema": schema}}
    if status == UNAUTHORIZED_STATUS:
        # Given by the gateway, before any route, on either face: its body template chosen by the
        # request's Accept (an OperationOutcome for a FHIR client), its Content-Type always JSON
        # (chalicelib.http.gateway_responses).
        content = {JSON: {"schema": {"oneOf": [schema, outcome_schema]}}}
    elif face == FHIR_FACE:
        # Every other error of a FHIR route is an OperationOutcome (its issue code from the same table).
        content = {FHIR_JSON: {"schema": outcome_schema}}
    result: dict[str, Any] = {
        "description": f"{ERROR_DESCRIPTIONS.get(status, 'Error')}: " + ", ".join(f"`{c}`" for c in codes),
        "content": content,
    }
    if status in ERROR_HEADERS:
        result["headers"] = ERROR_HEADERS[status]
    if face == FHIR_FACE and status == 412:  # the current version, as FHIR writes it
        result["headers"] = {"ETag": {**FHIR_ETAG_HEADER["ETag"], "required": True}}
    return result
