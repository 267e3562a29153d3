"""Domain errors as HTTP answers: the one status table, and the one error body.

Services raise the errors of ``chalicelib.errors``, which carry no status;
``STATUS_FOR_ERROR`` maps them here, once, for the answers (``error_response``)
and for the OpenAPI document (``chalicelib.http.openapi``) alike. The status and headers are
decided here for every face; only the body differs: this API's ``{code, message, request_id}``, or
on the FHIR face an OperationOutcome (``chalicelib.fhir.outcome``, loaded by the first FHIR error).
"""

from __future__ import annotations

from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import (
    DatabaseUnavailable,
    DocumentationAssetNotFound,
    DomainError,
    DuplicateEmail,
    DuplicateKey,
    IdempotencyKeyReused,
    InsufficientScope,
    MalformedRequest,
    NotificationNotFound,
    NotSupported,
    PatientDataInUrl,
    PatientNotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceUnavailable,
    UnacceptableValue,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    VersionNotFound,
)
from chalicelib.http.endpoints import FHIR_FACE, JSON_FACE
from chalicelib.http.requests import request_id_of
from chalicelib.http.responses import json_response

INTERNAL_ERROR_CODE = "internal_error"
INTERNAL_ERROR_MESSAGE = "An internal error occurred"
# Chalice answers a method its route does not declare itself, before any view, in its own shape.
METHOD_NOT_ALLOWED_CODE = "method_not_allowed"
METHOD_NOT_ALLOWED_MESSAGE = "This path does not accept this method; Allow lists the ones it does"

STATUS_FOR_ERROR: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    MalformedRequest: 400,
    DuplicateKey: 400,
    PatientDataInUrl: 400,
    Unauthenticated: 401,
    InsufficientScope: 403,
    PatientNotFound: 404,
    DocumentationAssetNotFound: 404,
    NotificationNotFound: 404,
    VersionNotFound: 404,
    DuplicateEmail: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    IdempotencyKeyReused: 422,
    UnacceptableValue: 422,
    NotSupported: 422,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def status_for(error_class: type[DomainError]) -> int:
    return next(STATUS_FOR_ERROR[cls] for cls in error_class.__mro__ if cls in STATUS_FOR_ERROR)


def error_response(error: DomainError, request: Request | None, face: str = JSON_FACE) -> Response:
    """The answer to ``error`` on an endpoint of ``face``: its status from the table, its headers."""
    status = status_for(type(error))
    headers = {}
    if isinstance(error, RateLimited | DatabaseUnavailable):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, PreconditionFailed) and error.current_etag is not None:
        headers["ETag"] = error.current_etag
    if face == FHIR_FACE:
        # Loaded by the first FHIR error only: the JSON routes' cold start never pays for it.
        from chalicelib.fhir import outcome

        return outcome.outcome_response(error, status, request_id_of(request), headers)
    body = error_body(error.code, error.message, request)
    if error.field is not None:
        body["field"] = error.field
    return json_response(body, status, headers)


def internal_error_response(request: Request | None, face: str = JSON_FACE) -> Response:
    """A 500 that says nothing of the cause: database errors can quote the statement."""
    if face == FHIR_FACE:
        from chalicelib.fhir import outcome

        return outcome.internal_error_response(
            INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE, request_id_of(request)
        )
    return json_response(error_body(INTERNAL_ERROR_CODE, INTERNAL_ERROR_MESSAGE, request), 500)


def error_body(code: str, message: str, request: Request | None) -> dict[str, Any]:
    """The one body of every error answer: code, message and the request's id."""
    body: dict[str, Any] = {"code": code, "message": message}
    request_id = request_id_of(request)
    if request_id:
        body["request_id"] = request_id
    return body
