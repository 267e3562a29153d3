"""What the gateway answers by itself: refused requests and unknown routes.

API Gateway answers a missing ``Authorization`` header with its UNAUTHORIZED
response (401) and an authorizer's deny with ACCESS_DENIED (403, aws/chalice#971).
We configure both as 401 with our JSON error body and the ``WWW-Authenticate``
challenge of RFC 6750 (``error="invalid_token"`` when a token was presented, i.e.
the authorizer denied it), and teach the local gateway of ``chalice local`` and
``chalice.test.Client`` to do the same, so the authorizer stays the gate and
every stage answers alike.

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

``GATEWAY_RESPONSES`` is the one definition: ``deploy.gateway_responses`` turns
it into the API definition that ``make package`` ships. ``SERVER_ERRORS`` are
the answers of the local HTTP server itself (``chalicelib.http.local_serving``, for
``chalice local`` and ``scripts.local_api``), for requests it cannot hand to the
gateway at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

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


GATEWAY_RESPONSES: dict[str, GatewayResponse] = {
    "UNAUTHORIZED": GatewayResponse(
        UNAUTHORIZED_STATUS, UNAUTHORIZED_BODY, {"WWW-Authenticate": BEARER_CHALLENGE}
    ),
    "ACCESS_DENIED": GatewayResponse(
        UNAUTHORIZED_STATUS, UNAUTHORIZED_BODY, {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
    ),
    "MISSING_AUTHENTICATION_TOKEN": GatewayResponse(ROUTE_NOT_FOUND_STATUS, ROUTE_NOT_FOUND_BODY),
    "DEFAULT_4XX": GatewayResponse(None, GATEWAY_REFUSED_BODY),
    "DEFAULT_5XX": GatewayResponse(None, GATEWAY_FAILED_BODY),
}
GATEWAY_RESPONSE_HEADERS = {"Content-Type": JSON_MEDIA_TYPE, **BASE_HEADERS}

# status -> (code, message) of what the local HTTP server answers before any gateway sees the request.
SERVER_ERRORS: dict[int, tuple[str, str]] = {
    HTTPStatus.BAD_REQUEST: ("bad_request", "The request line or a header is malformed"),
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
CODES_BEFORE_ANY_VIEW: tuple[str, ...] = (
    ROUTE_NOT_FOUND_BODY["code"],
    METHOD_NOT_ALLOWED_CODE,
    *(code for code, _message in SERVER_ERRORS.values()),
)


def gateway_body(response: GatewayResponse, request_id: str) -> bytes:
    return json.dumps({**response.body, "request_id": request_id}).encode()


def emulate_in_local_gateway() -> None:
    """Make chalice's local gateway answer as our API Gateway does: refusals, unknown routes, OPTIONS."""
    from chalice import local

    authorizer_class: Any = local.LocalGatewayAuthorizer
    if getattr(authorizer_class, "_answers_as_our_gateway", False):
        return
    authorize = authorizer_class.authorize

    def authorize_with_gateway_responses(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return authorize(self, *args, **kwargs)
        except local.NotAuthorizedError as no_token:  # chalice's 401: no Authorization header
            raise _as_gateway_response(local.NotAuthorizedError, "UNAUTHORIZED", no_token) from None
        except local.ForbiddenError as denied:  # chalice's 403: the authorizer denied the token
            raise _as_gateway_response(local.NotAuthorizedError, "ACCESS_DENIED", denied) from None

    class RouteNotFoundError(local.LocalGatewayException):
        CODE = ROUTE_NOT_FOUND_STATUS

    handle_request = local.LocalGateway.handle_request

    def handle_request_with_gateway_responses(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handle_request(self, *args, **kwargs)
        except local.ForbiddenError as no_route:  # refusals by the authorizer are 401s by now
            raise _as_gateway_response(RouteNotFoundError, "MISSING_AUTHENTICATION_TOKEN", no_route) from None

    has_options_view = local.LocalGateway._has_user_defined_options_method

    def options_reach_the_app(self: Any, lambda_event: Any) -> bool:
        # chalice local answers OPTIONS itself (a bodiless 200) even without CORS; API Gateway
        # hands it to the function (ANY), which answers 405. Only a CORS route keeps chalice's answer.
        route = self._app_object.routes[lambda_event["requestContext"]["resourcePath"]]
        return bool(has_options_view(self, lambda_event)) or not any(view.cors for view in route.values())

    authorizer_class.authorize = authorize_with_gateway_responses
    local.LocalGateway.handle_request = handle_request_with_gateway_responses  # type: ignore[method-assign]
    local.LocalGateway._has_user_defined_options_method = options_reach_the_app  # type: ignore[method-assign]
    authorizer_class._answers_as_our_gateway = True


def _as_gateway_response(error_class: Any, response_type: str, chalice_error: Any) -> Any:
    """``error_class`` carrying our gateway response, under the request id chalice's answer had."""
    response = GATEWAY_RESPONSES[response_type]
    request_id = chalice_error.headers["x-amzn-RequestId"]
    headers = {"x-amzn-RequestId": request_id, **GATEWAY_RESPONSE_HEADERS, **response.headers}
    return error_class(headers, gateway_body(response, request_id))
