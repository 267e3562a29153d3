"""HTTP edge shared by every handler in ``functions/``.

Routes are registered through ``register_route``, which wraps each handler so
that domain errors become one JSON error shape with the right status, and
nothing else ever leaks a traceback. (Chalice's middleware never sees
exceptions raised in REST views, so the mapping has to live in this wrapper.)
On a protected route the wrapper also spends one request of the principal's
rate limit and checks the route's scope, before the handler runs.
On an audited route the wrapper also makes sure every answer is in the audit
trail (``call_audited``).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, ChaliceAuthorizer, Request, Response

from chalicelib.access.rate_limit import enforce_rate_limit
from chalicelib.access.scopes import parse_scope_string
from chalicelib.audit import service as audit_trail
from chalicelib.audit.recording import AuditContext, AuditedAction, auditing
from chalicelib.config.settings import get_settings
from chalicelib.errors import (
    AuditUnavailable,
    DocumentationAssetNotFound,
    DomainError,
    DuplicateEmail,
    IdempotencyKeyReused,
    InsufficientScope,
    MalformedRequest,
    NotificationNotFound,
    PatientNotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceUnavailable,
    UnacceptableValue,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.observability.structured_logging import log_context
from chalicelib.storage.models import Patient, PatientRecord
from chalicelib.validation import SHOWN_FIELD_NAME, parse_patient_id

if TYPE_CHECKING:
    from chalicelib.notifications.service import NotificationPage, NotificationView
    from chalicelib.patients.service import PatientChange

logger = logging.getLogger("telehealth.http")
access_logger = logging.getLogger("telehealth.access")

# Every response can carry patient data or an error about it: never cache,
# unless a handler says otherwise (the public documentation assets do).
BASE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
INTERNAL_ERROR_CODE = "internal_error"
# Chalice answers a method its route does not declare itself, before any view, in its own shape.
METHOD_NOT_ALLOWED_CODE = "method_not_allowed"
METHOD_NOT_ALLOWED_MESSAGE = "This path does not accept this method; Allow lists the ones it does"
CHALICE_METHOD_NOT_ALLOWED = "MethodNotAllowedError"
JSON_MEDIA_TYPE = "application/json"
# Content types are checked by ``read_json_object`` so that a wrong one gets our error body.
ANY_CONTENT_TYPE = ["*/*"]

STATUS_FOR_ERROR: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    MalformedRequest: 400,
    Unauthenticated: 401,
    InsufficientScope: 403,
    PatientNotFound: 404,
    DocumentationAssetNotFound: 404,
    NotificationNotFound: 404,
    DuplicateEmail: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    IdempotencyKeyReused: 422,
    UnacceptableValue: 422,
    RateLimited: 429,
    ServiceUnavailable: 503,
}

Handler = Callable[..., Response]


# ``app.current_request`` is one attribute shared by every thread of a threaded
# server such as ``chalice local``: concurrent requests would read each other's.
# The middleware below hands each view the request it was called for.
_current_request: ContextVar[Request] = ContextVar("current_request")


def log_request(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: one access line per request; its request id on every line logged meanwhile.

    The route is the template (``/patients/{patient_id}``), never the path or the query.
    """
    started = time.perf_counter()
    status = 500
    with log_context(request_id=request_id_of(request)):
        try:
            response = get_response(request)
            status = response.status_code
            return response
        finally:
            access_logger.info(
                "request",
                extra={
                    "method": request.method,
                    "route": (request.context or {}).get("resourcePath"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "principal": _principal_or_none(request),
                },
            )


def method_not_allowed_in_our_shape(
    request: Request, get_response: Callable[[Request], Response]
) -> Response:
    """HTTP middleware: Chalice's own 405 (``{"Code": "MethodNotAllowedError"}``) in our error shape.

    In Lambda too: API Gateway hands every undeclared method to the function (the
    packaged API's ANY method), so this is the one place that answers them.
    """
    response = get_response(request)
    body = response.body
    if (
        response.status_code != 405
        or not isinstance(body, dict)
        or body.get("Code") != CHALICE_METHOD_NOT_ALLOWED
    ):
        return response
    error_body = _error_body(METHOD_NOT_ALLOWED_CODE, METHOD_NOT_ALLOWED_MESSAGE, request)
    return with_base_headers(_response(405, error_body, {"Allow": str(response.headers["Allow"])}))


def bind_current_request(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: make ``request`` the one the view of this call sees."""
    token = _current_request.set(request)
    try:
        return get_response(request)
    finally:
        _current_request.reset(token)


def register_route(
    app: Chalice,
    path: str,
    method: str,
    handler: Handler,
    *,
    authorizer: ChaliceAuthorizer | None,
    scope: str | None = None,
    audit: AuditedAction | None = None,
) -> None:
    """Route ``method path`` to ``handler``.

    A protected route names the scope a token needs for it; with ``audit``, each
    call is recorded in the audit trail as that action.
    """
    if (authorizer is None) != (scope is None):
        raise ValueError(f"{method} {path}: a route has both an authorizer and a scope, or neither")

    @functools.wraps(handler)
    def view(**path_params: str) -> Response:
        request = _current_request.get()
        if audit is not None:
            return call_audited(audit, handler, request, path_params, scope)
        return call_handler(handler, request, path_params, scope)

    view.required_scope = scope  # type: ignore[attr-defined]  # read by chalicelib.http.openapi
    view.audit_action = audit  # type: ignore[attr-defined]  # read by chalicelib.http.openapi
    app.route(path, methods=[method], authorizer=authorizer, content_types=ANY_CONTENT_TYPE)(view)


def call_handler(
    handler: Handler, request: Request, path_params: dict[str, str], scope: str | None = None
) -> Response:
    try:
        if scope is not None:
            admit(request, scope)
        refuse_undeclared_query_parameters(request, declared_query_parameters(handler))
        response = handler(request, **path_params)
    except DomainError as error:
        response = error_response(error, request)
    except Exception:
        # Never the exception text: database errors can quote the statement.
        logger.exception("unhandled error in %s", handler.__name__)
        response = _response(500, _error_body(INTERNAL_ERROR_CODE, "An internal error occurred", request))
    return with_base_headers(response)


@functools.cache
def declared_query_parameters(handler: Handler) -> frozenset[str]:
    """The names of the query parameters ``handler``'s ``@operation`` declares (chalicelib.http.openapi)."""
    query = handler.operation.query  # type: ignore[attr-defined]
    return frozenset(parameter.name for parameter in (query() if callable(query) else query))


def refuse_undeclared_query_parameters(request: Request, declared: frozenset[str]) -> None:
    """One rule for every route: a query parameter its operation does not declare is a 400.

    Raises ValidationFailed naming the first such parameter, if its name is plain.
    """
    for name in request.query_params or {}:
        if name not in declared:
            if SHOWN_FIELD_NAME.fullmatch(name):
                raise ValidationFailed(f"Unknown query parameter: {name}", field=name)
            # Not repeated: it could hold control characters or anything at all.
            raise ValidationFailed("Unknown query parameter (its name is not a plain parameter name)")


def with_base_headers(response: Response) -> Response:
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def admit(request: Request, scope: str) -> None:
    """Let an authenticated request reach its handler. Raises RateLimited, InsufficientScope."""
    principal = principal_of(request)
    # Every authenticated request counts, allowed or not, so a refused token cannot hammer either.
    enforce_rate_limit(principal)
    if scope not in scopes_of(request):
        raise InsufficientScope(scope)


def call_audited(
    action: AuditedAction,
    handler: Handler,
    request: Request,
    path_params: dict[str, str],
    scope: str | None = None,
) -> Response:
    """``call_handler`` under an audit context, and no answer without its audit row.

    A committed change has written its row in its own transaction; anything
    else (a read, a refusal, a failure) is recorded here with the status. If
    that row cannot be written the client gets a 503 instead: patient data is
    never disclosed, nor a refusal given, without a record of it.
    """
    raw_id = path_params.get("patient_id")
    context = AuditContext(
        principal=_principal_or_anonymous(request),
        action=action,
        request_id=request_id_of(request),
        patient_id=parse_patient_id(raw_id) if raw_id is not None else None,
    )
    with auditing(context):
        response = call_handler(handler, request, path_params, scope)
    if context.recorded:
        return response
    try:
        audit_trail.record_outcome(context, response.status_code)
    except Exception:
        logger.exception("audit trail write failed for %s", action.name)
        return with_base_headers(error_response(AuditUnavailable(), request))
    return response


def _principal_or_anonymous(request: Request) -> str:
    return _principal_or_none(request) or "anonymous"


def _principal_or_none(request: Request) -> str | None:
    try:
        return principal_of(request)
    except Unauthenticated:
        return None


def status_for(error_class: type[DomainError]) -> int:
    return next(STATUS_FOR_ERROR[cls] for cls in error_class.__mro__ if cls in STATUS_FOR_ERROR)


def error_response(error: DomainError, request: Request | None) -> Response:
    status = status_for(type(error))
    body = _error_body(error.code, error.message, request)
    if error.field is not None:
        body["field"] = error.field
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return _response(status, body, headers)


def _error_body(code: str, message: str, request: Request | None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    request_id = request_id_of(request)
    if request_id:
        body["request_id"] = request_id
    return body


def request_id_of(request: Request | None) -> str | None:
    """API Gateway's request id; else the invocation's (chalice local sets no requestId)."""
    context = getattr(request, "context", None) or {}
    request_id = context.get("requestId") or getattr(
        getattr(request, "lambda_context", None), "aws_request_id", None
    )
    return str(request_id) if request_id else None


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    # Said explicitly: API Gateway and chalice local assume JSON when it is missing, Lambda's
    # other callers (and chalice.test.Client) do not.
    return Response(
        body=body, status_code=status, headers={"Content-Type": JSON_MEDIA_TYPE, **(headers or {})}
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _response(status, body, headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """An answer without a body, such as 304 Not Modified."""
    return _response(status, "", headers)


def redirect_response(location: str) -> Response:
    """A 301 to ``location``; relative, so API Gateway's stage prefix (/api) is kept."""
    return _response(301, "", {"Location": location})


def text_response(body: str, content_type: str, *, cache_control: str | None = None) -> Response:
    """A 200 with a text body (HTML, JavaScript, CSS, pre-serialized JSON): never base64 in Lambda."""
    headers = {"Content-Type": content_type}
    if cache_control:
        headers["Cache-Control"] = cache_control
    return _response(200, body, headers)


def principal_of(request: Request) -> str:
    """The principal the authorizer established; handlers never re-read the header."""
    authorizer = (request.context or {}).get("authorizer") or {}
    principal = authorizer.get("principal") or authorizer.get("principalId")
    if not principal:
        raise Unauthenticated("Missing or invalid bearer token")
    return str(principal)


def scopes_of(request: Request) -> frozenset[str]:
    """The scopes the authorizer granted; none when it named none."""
    authorizer = (request.context or {}).get("authorizer") or {}
    return parse_scope_string(authorizer.get("scopes"))


def read_json_object(request: Request) -> Any:
    """Decode the request body as JSON. Raises MalformedRequest, PayloadTooLarge, UnsupportedMediaType."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    max_body_bytes = get_settings().max_body_bytes
    if len(raw) > max_body_bytes:
        raise PayloadTooLarge(f"Request body must be at most {max_body_bytes} bytes")
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


def patient_json(patient: Patient | PatientRecord) -> dict[str, Any]:
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
