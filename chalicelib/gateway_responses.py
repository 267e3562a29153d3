"""What the gateway answers by itself: refused requests and unknown routes.

API Gateway answers a missing ``Authorization`` header with its UNAUTHORIZED
response (401) and an authorizer's deny with ACCESS_DENIED (403, aws/chalice#971).
We configure both as 401 with our JSON error body, and teach the local
gateway of ``chalice local`` and ``chalice.test.Client`` to do the same, so the
authorizer stays the gate and every stage answers alike.

A method and path that match no route get MISSING_AUTHENTICATION_TOKEN, a 403
"Missing Authentication Token" that reads like an authentication failure; we
answer it as a 404 in our error shape, locally too.

``GATEWAY_RESPONSES`` is the one definition: ``deploy.gateway_responses`` turns
it into the API definition that ``make package`` ships.
"""

from __future__ import annotations

import json
from typing import Any

UNAUTHORIZED_STATUS = 401
UNAUTHORIZED_BODY = {"code": "unauthorized", "message": "Missing or invalid bearer token"}
# API Gateway response types that mean "no valid credentials", all answered as above.
UNAUTHORIZED_RESPONSE_TYPES = ("UNAUTHORIZED", "ACCESS_DENIED")

ROUTE_NOT_FOUND_STATUS = 404
ROUTE_NOT_FOUND_BODY = {"code": "route_not_found", "message": "No route matches this method and path"}

# API Gateway response type -> (status, JSON body); headers are GATEWAY_RESPONSE_HEADERS.
GATEWAY_RESPONSES: dict[str, tuple[int, dict[str, str]]] = {
    **{kind: (UNAUTHORIZED_STATUS, UNAUTHORIZED_BODY) for kind in UNAUTHORIZED_RESPONSE_TYPES},
    "MISSING_AUTHENTICATION_TOKEN": (ROUTE_NOT_FOUND_STATUS, ROUTE_NOT_FOUND_BODY),
}
GATEWAY_RESPONSE_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def unauthorized_body_bytes() -> bytes:
    return json.dumps(UNAUTHORIZED_BODY).encode()


def emulate_in_local_gateway() -> None:
    """Make chalice's local gateway answer refused requests and unknown routes as our API Gateway does."""
    from chalice import local

    authorizer_class: Any = local.LocalGatewayAuthorizer
    if getattr(authorizer_class, "_answers_unauthorized_with_401", False):
        return
    authorize = authorizer_class.authorize

    def authorize_with_gateway_responses(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return authorize(self, *args, **kwargs)
        except (local.NotAuthorizedError, local.ForbiddenError) as refused:
            headers = dict(refused.headers, **GATEWAY_RESPONSE_HEADERS)
            raise local.NotAuthorizedError(headers, unauthorized_body_bytes()) from None

    class RouteNotFoundError(local.LocalGatewayException):
        CODE = ROUTE_NOT_FOUND_STATUS

    handle_request = local.LocalGateway.handle_request

    def handle_request_with_gateway_responses(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handle_request(self, *args, **kwargs)
        except local.ForbiddenError as no_route:  # refusals by the authorizer are 401s by now
            headers = dict(no_route.headers, **GATEWAY_RESPONSE_HEADERS)
            raise RouteNotFoundError(headers, json.dumps(ROUTE_NOT_FOUND_BODY).encode()) from None

    authorizer_class.authorize = authorize_with_gateway_responses
    local.LocalGateway.handle_request = handle_request_with_gateway_responses  # type: ignore[method-assign]
    authorizer_class._answers_unauthorized_with_401 = True
