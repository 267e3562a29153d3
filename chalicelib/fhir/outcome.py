"""Domain errors as FHIR ``OperationOutcome``s: the status and headers come from the one table
(``chalicelib.http.errors``), the issue code from the error's class, or else from the status.

The request's id rides in the issue's ``diagnostics`` (the JSON API's ``request_id``), besides
``x-amzn-RequestId``, which API Gateway sets on every answer.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Response

from chalicelib.errors import (
    DomainError,
    IdempotencyKeyReused,
    NotSupported,
    PatientDataInUrl,
    PreconditionFailed,
    UnacceptableValue,
    UnsupportedMediaType,
)
from chalicelib.fhir.answers import fhir_response, weak_etag

# The JSON API's error code rides in each issue's details: the same machine-readable code on both faces.
ERROR_CODE_SYSTEM = "urn:telehealth-api:error-code"
# FHIR's IssueType codes (http://hl7.org/fhir/R4/valueset-issue-type.html).
ISSUE_CODE_FOR_ERROR: dict[type[DomainError], str] = {
    PreconditionFailed: "conflict",
    IdempotencyKeyReused: "conflict",
    NotSupported: "not-supported",
    UnsupportedMediaType: "not-supported",
    UnacceptableValue: "invalid",  # a 422 whose value its own check refuses: still a bad value
}
ISSUE_CODE_FOR_STATUS: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",  # and "conflict" for 409: a duplicate email
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}
# The FHIR face names its own search route where the JSON API names POST /patients/search.
FHIR_DIAGNOSTICS: dict[type[DomainError], str] = {
    PatientDataInUrl: "Patient data must not be sent in a URL: send these search parameters in the"
    " form body of POST /fhir/Patient/_search (application/x-www-form-urlencoded)",
}


def issue_code(error_class: type[DomainError], status: int) -> str:
    for cls in error_class.__mro__:
        if cls in ISSUE_CODE_FOR_ERROR:
            return ISSUE_CODE_FOR_ERROR[cls]
    return ISSUE_CODE_FOR_STATUS.get(status, "exception" if status >= 500 else "processing")


def operation_outcome(
    code: str,
    message: str,
    request_id: str | None,
    *,
    error_code: str,
    severity: str = "error",
    expression: str | None = None,
) -> dict[str, Any]:
    """``code``: FHIR's issue type; ``error_code``: the JSON API's code for the same error."""
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code,
        "details": {"coding": [{"system": ERROR_CODE_SYSTEM, "code": error_code}]},
        "diagnostics": f"{message} (request id {request_id})" if request_id else message,
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(
    error: DomainError, status: int, request_id: str | None, headers: dict[str, str]
) -> Response:
    """The OperationOutcome answering ``error`` with ``status`` and ``headers`` (from the table)."""
    message = next(
        (FHIR_DIAGNOSTICS[cls] for cls in type(error).__mro__ if cls in FHIR_DIAGNOSTICS), error.message
    )
    if "ETag" in headers:  # the current version (a 412): as FHIR writes it, W/"<version>"
        headers = {**headers, "ETag": weak_etag(int(headers["ETag"].strip('"').rpartition("-")[2]))}
    severity = "fatal" if status >= 500 else "error"
    body = operation_outcome(
        issue_code(type(error), status),
        message,
        request_id,
        error_code=error.code,
        severity=severity,
        expression=error.field,
    )
    return fhir_response(body, status, headers)


def internal_error_response(code: str, message: str, request_id: str | None) -> Response:
    """A 500 that says nothing of the cause, as the JSON API's."""
    body = operation_outcome("exception", message, request_id, error_code=code, severity="fatal")
    return fhir_response(body, 500)


def method_not_allowed_response(
    code: str, message: str, request_id: str | None, headers: dict[str, str]
) -> Response:
    """Chalice's 405 for a method a FHIR path does not declare (with ``Allow``)."""
    body = operation_outcome("not-supported", message, request_id, error_code=code)
    return fhir_response(body, 405, headers)
