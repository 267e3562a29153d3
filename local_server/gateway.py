"""Chalice's local gateway (``chalice local``, ``chalice.test.Client``) answering as our API Gateway does.

What API Gateway answers by itself is defined once, in ``chalicelib.http.gateway_responses``
(``deploy.gateway_responses`` renders it into the deployed API); this module makes chalice's
emulation of the gateway give the same answers.
"""

from __future__ import annotations

from typing import Any

from chalicelib.http.gateway_responses import (
    GATEWAY_RESPONSE_HEADERS,
    GATEWAY_RESPONSES,
    ROUTE_NOT_FOUND_STATUS,
    gateway_body,
    wants_fhir,
)


def emulate_in_local_gateway() -> None:
    """Make chalice's local gateway answer as our API Gateway does: refusals, unknown routes, OPTIONS."""
    from chalice import local

    authorizer_class: Any = local.LocalGatewayAuthorizer
    if getattr(authorizer_class, "_answers_as_our_gateway", False):
        return
    authorize = authorizer_class.authorize

    def authorize_with_gateway_responses(
        self: Any, raw_path: str, lambda_event: Any, lambda_context: Any
    ) -> Any:
        accept = _header(lambda_event.get("headers"), "accept")
        try:
            return authorize(self, raw_path, lambda_event, lambda_context)
        except local.NotAuthorizedError as no_token:  # chalice's 401: no Authorization header
            raise _as_gateway_response(local.NotAuthorizedError, "UNAUTHORIZED", no_token, accept) from None
        except local.ForbiddenError as denied:  # chalice's 403: the authorizer denied the token
            raise _as_gateway_response(local.NotAuthorizedError, "ACCESS_DENIED", denied, accept) from None

    class RouteNotFoundError(local.LocalGatewayException):
        CODE = ROUTE_NOT_FOUND_STATUS

    handle_request = local.LocalGateway.handle_request

    def handle_request_with_gateway_responses(
        self: Any, method: str, path: str, headers: Any, body: bytes | None
    ) -> Any:
        try:
            return handle_request(self, method, path, headers, body)
        except local.ForbiddenError as no_route:  # refusals by the authorizer are 401s by now
            raise _as_gateway_response(
                RouteNotFoundError, "MISSING_AUTHENTICATION_TOKEN", no_route, _header(headers, "accept")
            ) from None

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


def _as_gateway_response(error_class: Any, response_type: str, chalice_error: Any, accept: str | None) -> Any:
    """``error_class`` carrying our gateway response, under the request id chalice's answer had, in
    the body template API Gateway would choose for ``accept`` (the headers are the same for both)."""
    response = GATEWAY_RESPONSES[response_type]
    request_id = chalice_error.headers["x-amzn-RequestId"]
    headers = {"x-amzn-RequestId": request_id, **GATEWAY_RESPONSE_HEADERS, **response.headers}
    return error_class(headers, gateway_body(response, request_id, fhir=wants_fhir(accept)))


def _header(headers: Any, name: str) -> str | None:
    """A request header by its lowercase ``name``, however the client spelled it."""
    return next((str(value) for key, value in (headers or {}).items() if key.lower() == name), None)
