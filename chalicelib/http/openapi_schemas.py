"""The schema catalogue of the OpenAPI document: named schemas, header parameters, error descriptions.

Request bodies come from the declarations in ``chalicelib.patients.fields`` that the parsers enforce;
answers are described as the features' ``shapes`` modules build them. A new answer or body: add its
schema to ``component_schemas()`` and name it in the handler's ``@endpoint``.

One catalogue, over 300 lines, on purpose: a schema references the others by name, and the
document must hold each name once.
"""

from __future__ import annotations

from typing import Any

from chalicelib.audit.recording import ACTIONS
from chalicelib.audit.shapes import AUDIT_EVENT_FIELDS
from chalicelib.http.gateway_responses import BEARER_CHALLENGE, CODES_BEFORE_ANY_VIEW, INVALID_TOKEN_CHALLENGE
from chalicelib.http.openapi_headers import ETAG_HEADER
from chalicelib.notifications.broker import TASK_STATES
from chalicelib.notifications.events import PATIENT_CREATED, PATIENT_UPDATED
from chalicelib.patients.fields import EMAIL, NAME, PHONE, patient_create_schema, patient_update_schema
from chalicelib.patients.search import search_body_schema
from chalicelib.scopes import PATIENTS_READ, PATIENTS_WRITE
from chalicelib.storage.models import NotificationStatus
from chalicelib.validation import PATIENT_ID

REFUSALS_COUNTED = (
    "How many requests the event stands for: 1, except `request.rate_limited`: one event per principal"
    " and UTC minute (that of `occurred_at`, the first refusal's) counting every refusal in it."
)
ERROR_DESCRIPTIONS = {
    400: "The request breaks this document (a type, length, pattern, or unknown parameter or field), or"
    " names patient data in its query string (`phi_in_url`, on every route: `name`, `email`, `phone`,"
    " `given`, `family`, `telecom`, `birthdate`, `address`… in any case; search with"
    " `POST /patients/search` instead)",
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
    412: {
        "ETag": {
            **ETAG_HEADER["ETag"],
            "description": "The patient's current version, as its `ETag`: what `If-Match` would have to"
            " name now.",
            "required": True,
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until this token may send another request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": "With `database_unavailable`: seconds to wait before retrying (a create with"
            " the same `Idempotency-Key`, so that it cannot make a second patient).",
            "required": False,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _fhir_schemas() -> dict[str, Any]:
    # The document is built on first request for it: the FHIR face loads then, not at cold start.
    from chalicelib.fhir.schemas import fhir_schemas

    return fhir_schemas()


def component_schemas() -> dict[str, Any]:
    """Named schemas: request bodies from chalicelib.patients.fields, answers as the shapes build them."""
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
                    " methods) for a method the path does not declare, and from the local server 400, 414,"
                    " 431 or 505 for a request it cannot parse, 413 for a body over MAX_BODY_BYTES.",
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
        **_fhir_schemas(),
        "Health": {
            "type": "object",
            "required": ["status", "database", "redis"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "database": {"type": "string", "enum": ["ok", "unreachable", "not_migrated"]},
                "redis": {"type": "string", "enum": ["ok", "unreachable", "not_configured"]},
            },
            "additionalProperties": False,
        },
        "NotificationCounts": {
            "type": "object",
            "required": ["pending", "failed"],
            "properties": {
                "pending": {"type": "integer", "minimum": 0},
                "failed": {"type": "integer", "minimum": 0},
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
        "PatientReceipt": {
            "type": "object",
            "description": f"A patient as a token without `{PATIENTS_READ}` sees one it created or changed:"
            " never its name, email or phone. `version` is the one the `ETag` carries.",
            "required": ["id", "version", "created_at", "updated_at"],
            "properties": {
                "id": patient_id,
                "version": {"type": "integer", "minimum": 1},
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
                "patients": {"type": "array", "items": ref("Patient")},
                "next": {
                    "type": ["string", "null"],
                    "description": "Path and query of the following page (by cursor); null on the last page.",
                    "examples": ["/patients?after=20&per_page=20"],
                },
            },
            "additionalProperties": False,
        },
        "PatientSearch": search_body_schema(),
        "PatientSearchResults": {
            "type": "object",
            "description": "One page of the matching patients in id order. No `total`: counting every"
            " match would cost what the page saves.",
            "required": ["patients", "per_page", "next"],
            "properties": {
                "patients": {"type": "array", "items": ref("Patient")},
                "per_page": {"type": "integer", "minimum": 1},
                "next": {
                    **patient_id,
                    "type": ["integer", "null"],
                    "description": "The cursor of the following page: send it as `after` with the same"
                    " criteria. null on the last page.",
                    "examples": [20],
                },
            },
            "additionalProperties": False,
        },
        "AuditEvent": {
            "type": "object",
            "description": "One read or change of patient data. Never holds a name, email or phone.",
            "required": [*AUDIT_EVENT_FIELDS],
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
                "count": {"type": "integer", "minimum": 1, "description": REFUSALS_COUNTED},
            },
            "additionalProperties": False,
        },
        "AuditEventList": {
            "type": "object",
            "required": ["events", "per_page", "next"],
            "properties": {
                "events": {"type": "array", "items": ref("AuditEvent")},
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
    """The answer to a change: in full for a token with ``patients:read``, else without patient data
    (``chalicelib.patients.shapes`` decides which)."""
    notification_id = {
        "type": ["string", "null"],
        "format": "uuid",
        "description": "The notification announcing this change (GET /notifications/{id}).",
    }
    return {
        "description": f"To a token with `{PATIENTS_READ}`: the patient as stored. To a token without"
        f" it (`{PATIENTS_WRITE}` alone): no name, email or phone, but the patient's version and the"
        " notification's status (minimum necessary).",
        "oneOf": [
            {
                "title": f"With {PATIENTS_READ}",
                "type": "object",
                "required": ["message", "patient", "notification_id"],
                "properties": {
                    "message": {"type": "string", "examples": [text]},
                    "patient": ref("Patient"),
                    "notification_id": notification_id,
                },
                "additionalProperties": False,
            },
            {
                "title": f"Without {PATIENTS_READ}",
                "type": "object",
                "required": ["message", "patient", "notification_id", "notification_status"],
                "properties": {
                    "message": {"type": "string", "examples": [text]},
                    "patient": ref("PatientReceipt"),
                    "notification_id": notification_id,
                    "notification_status": {
                        "type": ["string", "null"],
                        "enum": [*NotificationStatus.ALL, None],
                        "description": "The notification's status once the change was handed off"
                        " (`queued`, or `pending` when the broker was unreachable); for a replay, its"
                        " status now. A token without `patients:read` cannot read the notification.",
                    },
                },
                "additionalProperties": False,
            },
        ],
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
            "last_error": {
                "type": ["string", "null"],
                "description": "The error of the latest failed attempt (its class and our text, never a"
                " provider's); null until one fails, and again once an attempt delivers.",
            },
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
        "required": ["total", "pages", "current_page", "per_page", "notifications", "next"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 0},
            "current_page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "notifications": {"type": "array", "items": ref("Notification")},
            "next": {
                "type": ["string", "null"],
                "description": "Path and query of the following page (the next page number, with the"
                " same `per_page` and filter); null on the last page.",
                "examples": ["/notifications?status=failed&page=2&per_page=20"],
            },
        },
        "additionalProperties": False,
    }
    return {"Notification": notification, "NotificationList": page}
