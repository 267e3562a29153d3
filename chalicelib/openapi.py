"""The OpenAPI 3.1 document of the API, built from the routes Chalice knows.

Each handler in ``functions/`` carries an ``@operation(...)`` describing its
answers and the domain errors it can raise; request and parameter schemas come
from the declarations in ``chalicelib.validation`` that the parsers enforce,
and error statuses from the one mapping in ``chalicelib.http``. Building walks
``app.routes``, so a route without a description fails loudly instead of
going undocumented. The document is built on first request and kept.

Adding a route: decorate its handler with ``@operation``, add any new body
schema to ``component_schemas()``, register it in ``app.py``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from chalice.app import Chalice

from chalicelib.errors import DomainError, MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.gateway_responses import UNAUTHORIZED_BODY, UNAUTHORIZED_STATUS
from chalicelib.http import INTERNAL_ERROR_CODE, MAX_BODY_BYTES, status_for
from chalicelib.validation import (
    EMAIL,
    NAME,
    PATIENT_ID,
    PHONE,
    IntegerParameter,
    patient_create_schema,
    patient_update_schema,
)

TITLE = "Telehealth patient API"
VERSION = "1.0.0"
BEARER_SCHEME = "bearerToken"
PATIENTS_TAG = "patients"
DOCUMENTATION_TAG = "documentation"
JSON = "application/json"
# Raised by chalicelib.http.read_json_object for every route that takes a JSON body.
BODY_ERRORS: tuple[type[DomainError], ...] = (MalformedRequest, PayloadTooLarge, UnsupportedMediaType)
PATH_PARAMETER = re.compile(r"{([^}]+)}")

Handler = TypeVar("Handler", bound=Callable[..., Any])


class UndocumentedRoute(LookupError):
    """A registered route whose handler has no ``@operation``, or misses a parameter."""


@dataclass(frozen=True)
class Reply:
    """One successful answer: a component schema (or inline schema) under one or more media types."""

    description: str
    schema: str | Mapping[str, Any]
    media_types: tuple[str, ...] = (JSON,)


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    # Domain errors the service can raise; body, auth and 500 errors are added from the route.
    errors: tuple[type[DomainError], ...] = ()
    request_body: str | None = None  # component schema name of a JSON body
    query: Sequence[IntegerParameter] | Callable[[], Sequence[IntegerParameter]] = ()
    path: Mapping[str, IntegerParameter | Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""


def operation(**details: Any) -> Callable[[Handler], Handler]:
    """Attach the OpenAPI description of a handler (``Operation``'s fields) to it."""
    described = Operation(**details)

    def attach(handler: Handler) -> Handler:
        handler.operation = described  # type: ignore[attr-defined]
        return handler

    return attach


@lru_cache(maxsize=4)
def document_json(app: Chalice) -> str:
    return json.dumps(build_document(app), separators=(",", ":"))


def build_document(app: Chalice) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            described: Operation | None = getattr(entry.view_function, "operation", None)
            if described is None:
                raise UndocumentedRoute(f"{method} {path} has no @operation")
            protected = entry.authorizer is not None
            paths.setdefault(path, {})[method.lower()] = _operation_object(
                path, entry.view_function.__name__, described, protected
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Patient records for telehealth clinics. Every patient route needs"
            " `Authorization: Bearer <token>`; errors share one body shape (`Error`).",
        },
        # Relative to this document, so the stage prefix of API Gateway (/api) is kept.
        "servers": [{"url": "."}],
        "security": [{BEARER_SCHEME: []}],
        "tags": [
            {"name": PATIENTS_TAG, "description": "Patient records (PHI)"},
            {"name": DOCUMENTATION_TAG, "description": "This document and its browser view, no token"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token issued to the clinic (API_TOKENS / API_TOKEN_SHA256).",
                }
            },
            "schemas": component_schemas(),
        },
    }


def _operation_object(path: str, operation_id: str, described: Operation, protected: bool) -> dict[str, Any]:
    query = described.query() if callable(described.query) else described.query
    parameters = [_path_parameter(path, name, described) for name in PATH_PARAMETER.findall(path)]
    parameters += [_query_parameter(parameter) for parameter in query]
    result: dict[str, Any] = {
        "operationId": operation_id,
        "summary": described.summary,
        "tags": [described.tag],
    }
    if described.description:
        result["description"] = described.description
    if parameters:
        result["parameters"] = parameters
    if described.request_body:
        result["requestBody"] = {
            "required": True,
            "description": f"A JSON object of at most {MAX_BODY_BYTES} bytes.",
            "content": {JSON: {"schema": _ref(described.request_body)}},
        }
    if not protected:
        result["security"] = []
    responses = {str(status): _reply_object(reply) for status, reply in described.replies.items()}
    responses.update(_error_responses(described, protected))
    result["responses"] = dict(sorted(responses.items()))
    return result


def _path_parameter(path: str, name: str, described: Operation) -> dict[str, Any]:
    declared = described.path.get(name)
    if declared is None:
        raise UndocumentedRoute(f"{path}: path parameter {name} is not described")
    if isinstance(declared, IntegerParameter):
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": declared.description,
            "schema": declared.json_schema(),
        }
    return {"name": name, "in": "path", "required": True, **declared}


def _query_parameter(parameter: IntegerParameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "in": "query",
        "required": False,
        "description": parameter.description,
        "schema": parameter.json_schema(),
    }


def _reply_object(reply: Reply) -> dict[str, Any]:
    schema = _ref(reply.schema) if isinstance(reply.schema, str) else dict(reply.schema)
    return {
        "description": reply.description,
        "content": {media_type: {"schema": schema} for media_type in reply.media_types},
    }


def _error_responses(described: Operation, protected: bool) -> dict[str, Any]:
    codes: dict[int, list[str]] = defaultdict(list)
    errors = list(described.errors) + (list(BODY_ERRORS) if described.request_body else [])
    for error in errors:
        codes[status_for(error)].append(error.code)
    if protected:
        codes[UNAUTHORIZED_STATUS].append(UNAUTHORIZED_BODY["code"])
    codes[500].append(INTERNAL_ERROR_CODE)
    return {str(status): _error_object(status, sorted(set(found))) for status, found in codes.items()}


def _error_object(status: int, codes: list[str]) -> dict[str, Any]:
    schema = {"allOf": [_ref("Error"), {"properties": {"code": {"enum": codes}}}]}
    return {
        "description": f"{ERROR_DESCRIPTIONS.get(status, 'Error')}: " + ", ".join(f"`{c}`" for c in codes),
        "content": {JSON: {"schema": schema}},
    }


ERROR_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Missing or invalid bearer token",
    404: "Not found",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    500: "Internal error",
    503: "Service unavailable",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def component_schemas() -> dict[str, Any]:
    """Named schemas: request bodies from chalicelib.validation, answers as chalicelib.http shapes them."""
    patient_id = {"type": "integer", "minimum": PATIENT_ID.minimum, "maximum": PATIENT_ID.maximum}
    timestamp = {"type": "string", "format": "date-time", "examples": ["2023-09-01T12:00:00.000000Z"]}
    message = {"type": "string"}
    return {
        "Error": {
            "type": "object",
            "description": "The one error body of every route.",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable error code."},
                "message": {"type": "string", "description": "Human-readable; never contains patient data."},
                "field": {"type": "string", "description": "The request field or parameter at fault."},
                "request_id": {"type": "string", "description": "The API Gateway request id, for support."},
            },
            "additionalProperties": False,
        },
        "PatientCreate": patient_create_schema(),
        "PatientUpdate": patient_update_schema(),
        "Patient": {
            "type": "object",
            "required": ["id", "name", "email", "phone", "created_at", "updated_at"],
            "properties": {
                "id": patient_id,
                "name": {"type": "string", "maxLength": NAME.max_length},
                "email": {"type": "string", "format": "email", "maxLength": EMAIL.max_length},
                "phone": {"type": ["string", "null"], "maxLength": PHONE.max_length},
                "created_at": timestamp,
                "updated_at": timestamp,
            },
            "additionalProperties": False,
        },
        "PatientCreated": _message_with_patient("Patient created successfully"),
        "PatientUpdated": _message_with_patient("Patient updated successfully"),
        "PatientDeleted": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {**message, "examples": ["Patient deleted successfully"]}},
            "additionalProperties": False,
        },
        "PatientList": {
            "type": "object",
            "required": ["total", "pages", "current_page", "per_page", "patients", "next"],
            "properties": {
                "total": {"type": "integer", "minimum": 0, "description": "Patients in all pages."},
                "pages": {"type": "integer", "minimum": 0},
                "current_page": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "The page number asked for; null when the page was asked for by `after`.",
                },
                "per_page": {"type": "integer", "minimum": 1},
                "patients": {"type": "array", "items": _ref("Patient")},
                "next": {
                    "type": ["string", "null"],
                    "description": "Path and query of the following page (by cursor); null on the last page.",
                    "examples": ["/patients?after=20&per_page=20"],
                },
            },
            "additionalProperties": False,
        },
        "OpenApiDocument": {"type": "object", "description": "This document."},
    }


def _message_with_patient(text: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["message", "patient"],
        "properties": {"message": {"type": "string", "examples": [text]}, "patient": _ref("Patient")},
        "additionalProperties": False,
    }
