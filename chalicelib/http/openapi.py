"""The OpenAPI 3.1 document of the API, built from the routes Chalice knows.

Each handler in ``functions/`` carries an ``@operation(...)`` describing its
answers and the domain errors it can raise; request and parameter schemas come
from the declarations in ``chalicelib.validation`` that the parsers enforce,
and error statuses from the one mapping in ``chalicelib.http.routes``. Building walks
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

from chalicelib.access.scopes import ALL_SCOPES
from chalicelib.audit.recording import ACTIONS
from chalicelib.config.settings import get_settings
from chalicelib.errors import (
    AuditUnavailable,
    DomainError,
    InsufficientScope,
    MalformedRequest,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.http.gateway_responses import (
    BEARER_CHALLENGE,
    CODES_BEFORE_ANY_VIEW,
    INVALID_TOKEN_CHALLENGE,
    UNAUTHORIZED_BODY,
    UNAUTHORIZED_STATUS,
)
from chalicelib.http.routes import INTERNAL_ERROR_CODE, status_for
from chalicelib.notifications.dispatch import TASK_STATES
from chalicelib.notifications.service import PATIENT_CREATED, PATIENT_UPDATED
from chalicelib.patients.idempotency import IDEMPOTENCY_KEY
from chalicelib.patients.preconditions import (
    IF_MATCH,
    IF_NONE_MATCH,
    MAX_HEADER_LENGTH,
    TAG_CONDITION_PATTERN,
)
from chalicelib.storage.models import NotificationStatus
from chalicelib.validation import (
    EMAIL,
    NAME,
    PATIENT_ID,
    PHONE,
    IntegerParameter,
    QueryParameter,
    patient_create_schema,
    patient_update_schema,
)

TITLE = "Telehealth patient API"
VERSION = "1.0.0"
BEARER_SCHEME = "bearerToken"
PATIENTS_TAG = "patients"
AUDIT_TAG = "audit"
NOTIFICATIONS_TAG = "notifications"
DOCUMENTATION_TAG = "documentation"
JSON = "application/json"
# Raised by chalicelib.http.routes.read_json_object for every route that takes a JSON body.
BODY_ERRORS: tuple[type[DomainError], ...] = (MalformedRequest, PayloadTooLarge, UnsupportedMediaType)
# Raised by chalicelib.http.routes.admit on every protected route, before its handler.
ADMISSION_ERRORS: tuple[type[DomainError], ...] = (RateLimited, InsufficientScope)
PATH_PARAMETER = re.compile(r"{([^}]+)}")

Handler = TypeVar("Handler", bound=Callable[..., Any])


class UndocumentedRoute(LookupError):
    """A registered route whose handler has no ``@operation``, or misses a parameter."""


@dataclass(frozen=True)
class Reply:
    """One successful answer: a component schema (or inline schema; None: no body) under one or more
    media types, and the response headers it carries."""

    description: str
    schema: str | Mapping[str, Any] | None
    media_types: tuple[str, ...] = (JSON,)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    replies: Mapping[int, Reply]
    # Domain errors the service can raise; body, auth and 500 errors are added from the route.
    errors: tuple[type[DomainError], ...] = ()
    request_body: str | None = None  # component schema name of a JSON body
    query: Sequence[QueryParameter] | Callable[[], Sequence[QueryParameter]] = ()
    headers: Sequence[Mapping[str, Any]] = ()  # request header parameter objects
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
            scope = getattr(entry.view_function, "required_scope", None) if entry.authorizer else None
            paths.setdefault(path, {})[method.lower()] = _operation_object(
                path,
                entry.view_function.__name__,
                described,
                scope,
                audited=getattr(entry.view_function, "audit_action", None) is not None,
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Patient records for telehealth clinics. Every patient route needs"
            " `Authorization: Bearer <token>` for a token holding the route's scope (listed in its"
            " `security`); errors share one body shape (`Error`). Each token's requests are"
            " rate-limited: over the limit, a 429 says when to retry (`Retry-After`).",
        },
        # Relative to this document, so the stage prefix of API Gateway (/api) is kept.
        "servers": [{"url": "."}],
        "security": [{BEARER_SCHEME: []}],
        "tags": [
            {"name": PATIENTS_TAG, "description": "Patient records (PHI)"},
            {"name": NOTIFICATIONS_TAG, "description": "Delivery of the notifications patient changes send"},
            {"name": AUDIT_TAG, "description": "Who read or changed patient data (no PHI)"},
            {"name": DOCUMENTATION_TAG, "description": "This document and its browser view, no token"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token issued to the clinic (API_TOKENS / API_TOKEN_SHA256), or a"
                    " signed JWT whose `scope` claim lists its scopes. Scopes: "
                    + ", ".join(f"`{scope}`" for scope in sorted(ALL_SCOPES))
                    + ".",
                }
            },
            "schemas": component_schemas(),
        },
    }


def _operation_object(
    path: str, operation_id: str, described: Operation, scope: str | None, *, audited: bool = False
) -> dict[str, Any]:
    """``scope``: what a token needs for this route; None for a public one."""
    query = described.query() if callable(described.query) else described.query
    parameters = [_path_parameter(path, name, described) for name in PATH_PARAMETER.findall(path)]
    parameters += [_query_parameter(parameter) for parameter in query]
    parameters += [dict(header) for header in described.headers]
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
            "description": f"A JSON object of at most {get_settings().max_body_bytes} bytes.",
            "content": {JSON: {"schema": _ref(described.request_body)}},
        }
    # OpenAPI 3.1 lets a bearer requirement list the roles (here, scopes) it needs.
    result["security"] = [{BEARER_SCHEME: [scope]}] if scope else []
    responses = {str(status): _reply_object(reply) for status, reply in described.replies.items()}
    responses.update(_error_responses(described, protected=scope is not None, audited=audited))
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
    if reply.schema is not None:
        schema = _ref(reply.schema) if isinstance(reply.schema, str) else dict(reply.schema)
        result["content"] = {media_type: {"schema": schema} for media_type in reply.media_types}
    return result


def _error_responses(described: Operation, protected: bool, audited: bool = False) -> dict[str, Any]:
    codes: dict[int, list[str]] = defaultdict(list)
    errors = list(described.errors) + (list(BODY_ERRORS) if described.request_body else [])
    # chalicelib.http.routes refuses a query parameter the operation does not declare, on every route.
    errors += [ValidationFailed]
    # chalicelib.http.routes answers 503 when the audit row of an audited route cannot be written.
    errors += [AuditUnavailable] if audited else []
    for error in errors:
        codes[status_for(error)].append(error.code)
    if protected:
        codes[UNAUTHORIZED_STATUS].append(UNAUTHORIZED_BODY["code"])
        for error in ADMISSION_ERRORS:
            codes[status_for(error)].append(error.code)
    codes[500].append(INTERNAL_ERROR_CODE)
    return {str(status): _error_object(status, sorted(set(found))) for status, found in codes.items()}


def _error_object(status: int, codes: list[str]) -> dict[str, Any]:
    schema = {"allOf": [_ref("Error"), {"properties": {"code": {"enum": codes}}}]}
    result: dict[str, Any] = {
        "description": f"{ERROR_DESCRIPTIONS.get(status, 'Error')}: " + ", ".join(f"`{c}`" for c in codes),
        "content": {JSON: {"schema": schema}},
    }
    if status in ERROR_HEADERS:
        result["headers"] = ERROR_HEADERS[status]
    return result


ERROR_DESCRIPTIONS = {
    400: "The request breaks this document (a type, length, pattern, or unknown parameter or field)",
    401: "Missing or invalid bearer token",
    403: "The token lacks this route's scope",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed: the patient changed since the version named in If-Match",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Fits this document but cannot be done: a value its own check refuses (an email address,"
    " a phone number, a date that does not exist; `field` names it), or an Idempotency-Key used with"
    " another body",
    429: "Too many requests from this token",
    500: "Internal error",
    503: "Service unavailable",
}


ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": f"`{BEARER_CHALLENGE}`; `{INVALID_TOKEN_CHALLENGE}` when a token was sent"
            " (RFC 6750).",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until this token may send another request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def component_schemas() -> dict[str, Any]:
    """Named schemas: request bodies from chalicelib.validation, answers as the shapes modules build them."""
    patient_id = {"type": "integer", "minimum": PATIENT_ID.minimum, "maximum": PATIENT_ID.maximum}
    timestamp = {"type": "string", "format": "date-time", "examples": ["2023-09-01T12:00:00.000000Z"]}
    message = {"type": "string"}
    return {
        "Error": {
            "type": "object",
            "description": "The one body of every error answer (4xx, 5xx).",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable error code: each response lists its own. Any"
                    " request can also get one of "
                    + ", ".join(f"`{code}`" for code in CODES_BEFORE_ANY_VIEW)
                    + " before it reaches a route: 404 for an unknown path, 405 (with `Allow`, the path's"
                    " methods) for a method the path does not declare, and from the local server 400,"
                    " 414, 431 or 505 for a request it cannot parse.",
                },
                "message": {"type": "string", "description": "Human-readable; never contains patient data."},
                "field": {"type": "string", "description": "The request field or parameter at fault."},
                "request_id": {
                    "type": "string",
                    "description": "The request's id (API Gateway's in the cloud), as in its log lines.",
                },
            },
            "additionalProperties": False,
        },
        **_notification_schemas(timestamp, patient_id),
        "Health": {
            "type": "object",
            "required": ["status", "database", "redis", "notifications"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "database": {"type": "string", "enum": ["ok", "unreachable"]},
                "redis": {"type": "string", "enum": ["ok", "unreachable", "not_configured"]},
                "notifications": {
                    "type": "object",
                    "required": ["pending", "failed"],
                    "properties": {
                        "pending": {"type": ["integer", "null"], "minimum": 0},
                        "failed": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "additionalProperties": False,
                },
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
        "AuditEvent": {
            "type": "object",
            "description": "One read or change of patient data. Never holds a name, email or phone.",
            "required": ["id", "occurred_at", "principal", "action", "patient_id", "status", "request_id"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "occurred_at": timestamp,
                "principal": {"type": "string", "description": "Who: the token's principal."},
                "action": {"type": "string", "enum": list(ACTIONS)},
                "patient_id": {**patient_id, "type": ["integer", "null"], "description": "null for lists."},
                "status": {
                    "type": ["integer", "null"],
                    "description": "The HTTP status answered; null for a change made outside the API.",
                },
                "request_id": {"type": ["string", "null"], "description": "API Gateway's request id."},
            },
            "additionalProperties": False,
        },
        "AuditEventList": {
            "type": "object",
            "required": ["events", "per_page", "next"],
            "properties": {
                "events": {"type": "array", "items": _ref("AuditEvent")},
                "per_page": {"type": "integer", "minimum": 1},
                "next": {
                    "type": ["string", "null"],
                    "description": "Path and query of the next (older) page; null on the last page.",
                    "examples": ["/audit?patient_id=7&before=120&per_page=20"],
                },
            },
            "additionalProperties": False,
        },
        "OpenApiDocument": {"type": "object", "description": "This document."},
    }


def _message_with_patient(text: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["message", "patient", "notification_id"],
        "properties": {
            "message": {"type": "string", "examples": [text]},
            "patient": _ref("Patient"),
            "notification_id": {
                "type": ["string", "null"],
                "format": "uuid",
                "description": "The notification announcing this change (GET /notifications/{id}).",
            },
        },
        "additionalProperties": False,
    }


def _notification_schemas(timestamp: dict[str, Any], patient_id: dict[str, Any]) -> dict[str, Any]:
    notification = {
        "type": "object",
        "description": "The delivery of one patient change: ids and states, never patient data.",
        "required": ["id", "patient_id", "event", "channels", "status", "attempts", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "patient_id": patient_id,
            "event": {"type": "string", "enum": [PATIENT_CREATED, PATIENT_UPDATED]},
            "channels": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": list(NotificationStatus.ALL)},
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": {"type": ["string", "null"]},
            "correlation_id": {"type": ["string", "null"]},
            "created_at": timestamp,
            "updated_at": timestamp,
            "delivered_at": {"anyOf": [timestamp, {"type": "null"}]},
            "task_state": {
                "type": ["string", "null"],
                "enum": [*TASK_STATES, None],
                "description": "Celery's state in the Redis result backend; `UNKNOWN` if Redis is down;"
                " `EXPIRED` for a finished notification (delivered, failed, cancelled) whose result the"
                " backend no longer holds (kept a week; lost if Redis restarts without persistence).",
            },
        },
        "additionalProperties": False,
    }
    page = {
        "type": "object",
        "required": ["total", "pages", "current_page", "per_page", "notifications"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 0},
            "current_page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "notifications": {"type": "array", "items": _ref("Notification")},
        },
        "additionalProperties": False,
    }
    return {"Notification": notification, "NotificationList": page}
