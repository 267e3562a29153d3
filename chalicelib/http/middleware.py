"""Chalice HTTP middleware, registered by app.py in this order: the access line, Chalice's own 405 in our
error shape, and the request each view sees.

For REST routes, middleware never sees an exception raised in a view; domain errors are mapped in
the view wrapper (``chalicelib.http.routes``) instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from chalice.app import Request, Response

from chalicelib.http.endpoints import FHIR_FACE, face_of_path
from chalicelib.http.errors import METHOD_NOT_ALLOWED_CODE, METHOD_NOT_ALLOWED_MESSAGE, error_body
from chalicelib.http.requests import principal_or_none, request_id_of
from chalicelib.http.responses import json_response, with_base_headers
from chalicelib.observability.metrics import metrics_batch, record_request
from chalicelib.observability.structured_logging import log_context

access_logger = logging.getLogger("telehealth.access")
CHALICE_METHOD_NOT_ALLOWED = "MethodNotAllowedError"

# ``app.current_request`` is one attribute shared by every thread of a threaded
# server such as ``chalice local``: concurrent requests would read each other's.
# ``bind_current_request`` hands each view the request it was called for.
_current_request: ContextVar[Request] = ContextVar("current_request")


def log_request(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """One access line per request, carrying its metrics (EMF); its request id on every line logged meanwhile.

    The route is the template (``/patients/{patient_id}``), never the path or the query.
    """
    started = time.perf_counter()
    status = 500
    route = (request.context or {}).get("resourcePath")
    with log_context(request_id=request_id_of(request)), metrics_batch() as metrics:
        try:
            response = get_response(request)
            status = response.status_code
            return response
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            record_request(metrics, route, status, duration_ms)
            access_logger.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "principal": principal_or_none(request),
                    # The request's metrics ride on this line (EMF) when it is written and is JSON.
                    **(metrics.take_for_json_line() if access_logger.isEnabledFor(logging.INFO) else {}),
                },
            )


def method_not_allowed_in_our_shape(
    request: Request, get_response: Callable[[Request], Response]
) -> Response:
    """Chalice's own 405 (``{"Code": "MethodNotAllowedError"}``) in our error shape.

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
    allow = {"Allow": str(response.headers["Allow"])}
    if is_fhir_request(request):
        # A path of the FHIR face, or a FHIR client, answers in its shape (chalicelib.fhir loads only then).
        from chalicelib.fhir import outcome

        return with_base_headers(
            outcome.method_not_allowed_response(
                METHOD_NOT_ALLOWED_CODE, METHOD_NOT_ALLOWED_MESSAGE, request_id_of(request), allow
            )
        )
    error = error_body(METHOD_NOT_ALLOWED_CODE, METHOD_NOT_ALLOWED_MESSAGE, request)
    return with_base_headers(json_response(error, 405, allow))


def is_fhir_request(request: Request) -> bool:
    """A path of the FHIR face, or a client whose Accept asks for FHIR's JSON first (as API
    Gateway's own answers go by): its 405 is an OperationOutcome."""
    if face_of_path((request.context or {}).get("resourcePath")) == FHIR_FACE:
        return True
    from chalicelib.http.gateway_responses import wants_fhir  # a 405's only: not on the cold path

    headers: Any = request.headers or {}
    return wants_fhir(headers.get("accept"))


def bind_current_request(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Make ``request`` the one the view of this call sees (``current_request``)."""
    token = _current_request.set(request)
    try:
        return get_response(request)
    finally:
        _current_request.reset(token)


def current_request() -> Request:
    """The request of the call being answered, as ``bind_current_request`` bound it."""
    return _current_request.get()
