"""HTTP edge shared by every handler in ``functions/``.

Routes are registered through ``register_route``, which wraps each handler so
that domain errors become one JSON error shape with the right status, and
nothing else ever leaks a traceback. (Chalice's middleware never sees
exceptions raised in REST views, so the mapping has to live in this wrapper.)
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, ChaliceAuthorizer, Request, Response

from chalicelib.errors import (
    DomainError,
    DuplicateEmail,
    MalformedRequest,
    NotificationNotFound,
    PatientNotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.models import Patient

if TYPE_CHECKING:
    from chalicelib.notifications import NotificationPage, NotificationView
    from chalicelib.patients import PatientChange

logger = logging.getLogger("telehealth.http")

MAX_BODY_BYTES = 64 * 1024
# Every response can carry patient data or an error about it: never cache.
BASE_HEADERS = {"Cache-Control": "no-store"}
# Content types are checked by ``read_json_object`` so that a wrong one gets our error body.
ANY_CONTENT_TYPE = ["*/*"]

STATUS_FOR_ERROR: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    MalformedRequest: 400,
    Unauthenticated: 401,
    PatientNotFound: 404,
    NotificationNotFound: 404,
    DuplicateEmail: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ServiceUnavailable: 503,
}

Handler = Callable[..., Response]


def register_route(
    app: Chalice, path: str, method: str, handler: Handler, *, authorizer: ChaliceAuthorizer | None
) -> None:
    @functools.wraps(handler)
    def view(**path_params: str) -> Response:
        request = app.current_request
        assert request is not None  # Chalice sets it before calling a view
        return call_handler(handler, request, path_params)

    app.route(path, methods=[method], authorizer=authorizer, content_types=ANY_CONTENT_TYPE)(view)


def call_handler(handler: Handler, request: Request, path_params: dict[str, str]) -> Response:
    try:
        response = handler(request, **path_params)
    except DomainError as error:
        response = error_response(error, request)
    except Exception:
        # Never the exception text: database errors can quote the statement.
        logger.exception("unhandled error in %s", handler.__name__)
        response = _response(500, _error_body("internal_error", "An internal error occurred", request))
    response.headers.update(BASE_HEADERS)
    return response


def error_response(error: DomainError, request: Request | None) -> Response:
    status = next(STATUS_FOR_ERROR[cls] for cls in type(error).__mro__ if cls in STATUS_FOR_ERROR)
    body = _error_body(error.code, error.message, request)
    if error.field is not None:
        body["field"] = error.field
    return _response(status, body)


def _error_body(code: str, message: str, request: Request | None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    request_id = request_id_of(request)
    if request_id:
        body["request_id"] = request_id
    return body


def request_id_of(request: Request | None) -> str | None:
    context = getattr(request, "context", None) or {}
    request_id = context.get("requestId")
    return str(request_id) if request_id else None


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers=dict(headers or {}))


def json_response(body: Any, status: int = 200) -> Response:
    return _response(status, body)


def principal_of(request: Request) -> str:
    """The principal the authorizer established; handlers never re-read the header."""
    authorizer = (request.context or {}).get("authorizer") or {}
    principal = authorizer.get("principal") or authorizer.get("principalId")
    if not principal:
        raise Unauthenticated("Missing or invalid bearer token")
    return str(principal)


def read_json_object(request: Request) -> Any:
    """Decode the request body as JSON. Raises MalformedRequest, PayloadTooLarge, UnsupportedMediaType."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body must be at most {MAX_BODY_BYTES} bytes")
    content_type = (request.headers.get("content-type") or "application/json").lower()
    media_type = content_type.split(";", 1)[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Content-Type must be application/json")
    if not raw.strip():
        raise MalformedRequest("Request body must be a JSON object")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedRequest("Request body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise MalformedRequest("Request body is not valid JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def iso_utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def patient_json(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email,
        "phone": patient.phone,
        "created_at": iso_utc(patient.created_at),
        "updated_at": iso_utc(patient.updated_at),
    }


def patient_change_json(message: str, change: PatientChange) -> dict[str, Any]:
    """The seed's create/update answer, plus the id of the notification the change produced."""
    return {
        "message": message,
        "patient": patient_json(change.patient),
        "notification_id": change.notification_id,
    }


def notification_json(view: NotificationView) -> dict[str, Any]:
    notification = view.notification
    return {
        "id": notification.id,
        "patient_id": notification.patient_id,
        "event": notification.event,
        "channels": notification.channel_list,
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "correlation_id": notification.correlation_id,
        "created_at": iso_utc(notification.created_at),
        "updated_at": iso_utc(notification.updated_at),
        "delivered_at": iso_utc(notification.delivered_at) if notification.delivered_at else None,
        "task_state": view.task_state,
    }


def notification_page_json(page: NotificationPage) -> dict[str, Any]:
    return {
        "total": page.total,
        "pages": page.pages,
        "current_page": page.page,
        "per_page": page.per_page,
        "notifications": [notification_json(view) for view in page.notifications],
    }
