"""What the gateway answers by itself: refused requests and unknown routes.

API Gateway answers a missing ``Authorization`` header with its UNAUTHORIZED
response (401) and an authorizer's deny with ACCESS_DENIED (403, aws/chalice#971).
We configure both as 401 with our JSON error body and the ``WWW-Authenticate``
challenge of RFC 6750 (``error="invalid_token"`` when a token was presented, i.e.
the authorizer denied it); ``local_server.gateway`` teaches the local gateway of
``chalice local`` and ``chalice.test.Client`` to do the same, so the authorizer
stays the gate and every stage answers alike.

A method and path that match no route get MISSING_AUTHENTICATION_TOKEN, a 403
"Missing Authentication Token" that reads like an authentication failure; we
answer it as a 404 in our error shape, locally too.

Every other refusal or failure of the gateway itself (throttling, a WAF block,
an oversized request, an integration timeout, an authorizer that failed) gets
DEFAULT_4XX or DEFAULT_5XX: our error shape and headers (``no-store`` above all),
under the status API Gateway chose. Those happen only in the cloud.

Every one of these bodies names the request (``request_id``): API Gateway's
``$context.requestId``, and locally the id chalice's gateway sends in
``x-amzn-RequestId``.

A FHIR client gets each of them as an ``OperationOutcome`` (issue code ``login``,
``not-found``, ``throttled``, ``processing`` or ``exception``; the request id in its
``diagnostics``, as the FHIR routes' own OperationOutcomes have it). A gateway
response cannot vary by path, but API Gateway picks its body template by the
request's ``Accept``: each response has an ``application/fhir+json`` template beside
``application/json``, chosen when ``Accept`` names ``application/fhir+json`` before
``application/json``; the local gateway chooses the same way (``wants_fhir``). Its headers are one static set
whichever template answered, so the cloud's ``Content-Type`` stays
``application/json`` (which FHIR accepts for its JSON format).

``GATEWAY_RESPONSES`` is the one definition: ``deploy.gateway_responses`` turns
it into the API definition that ``make package`` ships. ``SERVER_ERRORS`` are
the answers of the local HTTP server itself (``local_server.request_handling``, for
``chalice local`` and ``scripts.local_api``), for requests it cannot hand to the
gateway at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from chalicelib.http.endpoints import FHIR_JSON
from chalicelib.http.errors import METHOD_NOT_ALLOWED_CODE
from chalicelib.http.responses import BASE_HEADERS, JSON_MEDIA_TYPE

REALM = "telehealth-api"
# RFC 6750 section 3: a bare challenge when no credentials came, invalid_token when they were refused.
BEARER_CHALLENGE = f'Bearer realm="{REALM}"'
INVALID_TOKEN_CHALLENGE = f'{BEARER_CHALLENGE}, error="invalid_token"'

UNAUTHORIZED_STATUS = 401
UNAUTHORIZED_BODY = {"code": "unauthorized", "message": "Missing or invalid bearer token"}
# API Gateway response types that mean "no valid credentials", all answered as above.
UNAUTHORIZED_RESPONSE_TYPES = ("UNAUTHORIZED", "ACCESS_DENIED")

ROUTE_NOT_FOUND_STATUS = 404
ROUTE_NOT_FOUND_BODY = {"code": "route_not_found", "message": "No route matches this method and path"}


FHIR_MEDIA_TYPE = FHIR_JSON
# Where an OperationOutcome names the JSON body's code (chalicelib.fhir.outcome.ERROR_CODE_SYSTEM: this
# module stays free of the FHIR package, which the deploy and the document need not load).
FHIR_ERROR_CODE_SYSTEM = "urn:telehealth-api:error-code"

# The gateway's own refusals and failures, whatever their status (429, 403 from WAF, 504, ...).
GATEWAY_REFUSED_BODY = {"code": "gateway_refused", "message": "The API gateway refused this request"}
GATEWAY_FAILED_BODY = {"code": "gateway_error", "message": "The API gateway could not complete this request"}


@dataclass(frozen=True)
class GatewayResponse:
    # None keeps the status API Gateway chose for the response type.
    status: int | None
    body: Mapping[str, str]
    # Besides GATEWAY_RESPONSE_HEADERS.
    headers: Mapping[str, str] = field(default_factory=dict)
    # FHIR's IssueType code (http://hl7.org/fhir/R4/valueset-issue-type.html) of its OperationOutcome.
    fhir_issue: str = "processing"

    def fhir_severity(self) -> str:
        # A failure of the gateway itself (DEFAULT_5XX) is fatal, as the FHIR routes' 5xx are.
        return "fatal" if self.fhir_issue == "exception" else "error"


GATEWAY_RESPONSES: dict[str, GatewayResponse] = {
    "UNAUTHORIZED": GatewayResponse(
        UNAUTHORIZED_STATUS, UNAUTHORIZED_BODY, {"WWW-Authenticate": BEARER_CHALLENGE}, fhir_issue="login"
    ),
    "ACCESS_DENIED": GatewayResponse(
        UNAUTHORIZED_STATUS,
        UNAUTHORIZED_BODY,
        {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE},
        fhir_issue="login",
    ),
    "MISSING_AUTHENTICATION_TOKEN": GatewayResponse(
        ROUTE_NOT_FOUND_STATUS, ROUTE_NOT_FOUND_BODY, fhir_issue="not-found"
    ),
    # The stage's throttling (429): DEFAULT_4XX's JSON, but FHIR has a code of its own for it.
    "THROTTLED": GatewayResponse(None, GATEWAY_REFUSED_BODY, fhir_issue="throttled"),
    "DEFAULT_4XX": GatewayResponse(None, GATEWAY_REFUSED_BODY),
    "DEFAULT_5XX": GatewayResponse(None, GATEWAY_FAILED_BODY, fhir_issue="exception"),
}
GATEWAY_RESPONSE_HEADERS = {"Content-Type": JSON_MEDIA_TYPE, **BASE_HEADERS}

# status -> (code, message) of what the local HTTP server answers before any gateway sees the request.
SERVER_ERRORS: dict[int, tuple[str, str]] = {
    HTTPStatus.BAD_REQUEST: ("bad_request", "The request line or a header is malformed"),
    # A body over MAX_BODY_BYTES, refused before it is read: the code of the app's own 413.
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: ("payload_too_large", "The request body is too large"),
    HTTPStatus.REQUEST_URI_TOO_LONG: ("uri_too_long", "The request line is longer than 65536 bytes"),
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: (
        "header_too_large",
        "A header line is longer than 65536 bytes, or there are more than 100 headers",
    ),
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: (
        "http_version_not_supported",
        "Only HTTP/1.0 and HTTP/1.1 are served",
    ),
}

# Codes answered before any view runs (each route's own are in its responses in the document).
CODES_BEFORE_ANY_VIEW: tuple[str, ...] = tuple(
    dict.fromkeys(
        (ROUTE_NOT_FOUND_BODY["code"], METHOD_NOT_ALLOWED_CODE, *(code for code, _ in SERVER_ERRORS.values()))
    )
)


def gateway_body(response: GatewayResponse, request_id: str, *, fhir: bool = False) -> bytes:
    """The body of ``response`` for the request ``request_id``: ours, or FHIR's OperationOutcome."""
    body = fhir_outcome(response, request_id) if fhir else {**response.body, "request_id": request_id}
    return json.dumps(body).encode()


def fhir_outcome(response: GatewayResponse, request_id: str) -> dict[str, Any]:
    """``response`` as an OperationOutcome, shaped as the FHIR routes' own (``chalicelib.fhir.outcome``)."""
    issue = {
        "severity": response.fhir_severity(),
        "code": response.fhir_issue,
        "details": {"coding": [{"system": FHIR_ERROR_CODE_SYSTEM, "code": response.body["code"]}]},
        "diagnostics": f"{response.body['message']} (request id {request_id})",
    }
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def wants_fhir(accept: str | None) -> bool:
    """Whether the gateway answers a request with this ``Accept`` with its OperationOutcome template:
    the first media range that names one of its templates decides (our reading of API Gateway's
    choice); none (no ``Accept``, ``*/*``) means ``application/json``."""
    for media_range in (accept or "").split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type in (JSON_MEDIA_TYPE, FHIR_MEDIA_TYPE):
            return media_type == FHIR_MEDIA_TYPE
    return False
