"""Routing: each handler in ``functions/`` becomes a Chalice view as its ``@endpoint`` declares.

The view wraps the handler so that domain errors become one JSON error shape
with the right status (``chalicelib.http.errors``), and nothing else ever leaks
a traceback. (Chalice's middleware never sees exceptions raised in REST views,
so the mapping has to live in this wrapper.) On a protected route the wrapper
also spends one request of the principal's rate limit and checks the route's
scope, before the handler runs. On an audited route the wrapper creates the
request's ``AuditContext``, hands it to the handler (its ``audit`` parameter),
and makes sure every answer is in the audit trail (``call_audited``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping

from chalice.app import Chalice, ChaliceAuthorizer, Request, Response

from chalicelib import bootstrap
from chalicelib.access.rate_limit import enforce_rate_limit
from chalicelib.audit import service as audit_trail
from chalicelib.audit.recording import AuditContext, AuditedAction
from chalicelib.errors import (
    AuditUnavailable,
    DatabaseUnavailable,
    DomainError,
    InsufficientScope,
    RateLimited,
    SchemaNotMigrated,
)
from chalicelib.http.endpoints import JSON_FACE, endpoint_of, register_face
from chalicelib.http.errors import error_response, internal_error_response
from chalicelib.http.middleware import current_request
from chalicelib.http.requests import (
    principal_of,
    principal_or_none,
    refuse_patient_data_in_query,
    refuse_undeclared_query_parameters,
    request_id_of,
    scopes_of,
)
from chalicelib.http.responses import with_base_headers
from chalicelib.observability.metrics import record_audit_unavailable
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import attempt, is_dropped_connection, one_connection
from chalicelib.storage.schema import is_missing_schema
from chalicelib.validation import parse_patient_id

logger = logging.getLogger("telehealth.http")
# Content types are checked by ``read_json_object`` so that a wrong one gets our error body.
ANY_CONTENT_TYPE = ["*/*"]

Handler = Callable[..., Response]
NOTHING_GIVEN: Mapping[str, object] = {}


def register_endpoint(app: Chalice, handler: Handler, *, authorizer: ChaliceAuthorizer | None) -> None:
    """Route ``handler`` as its ``@endpoint`` declares; behind ``authorizer`` if it names a scope."""
    declared = endpoint_of(handler)
    if declared is None:
        raise ValueError(f"{handler.__name__} is not declared with @endpoint")
    if declared.scope is not None and authorizer is None:
        raise ValueError(f"{declared.method} {declared.path} needs a token: register it with an authorizer")

    # GET /openapi.json describes the app that serves it, handed over here: no handler imports
    # app.py (which imports every handler).
    given: Mapping[str, object] = {"app": app} if declared.describes_app else NOTHING_GIVEN

    @functools.wraps(handler)
    def view(**path_params: str) -> Response:
        request = current_request()
        if declared.audit is not None:
            return call_audited(declared.audit, handler, request, path_params, declared.scope)
        return call_handler(handler, request, path_params, declared.scope, given)

    register_face(declared.path, declared.face)
    app.route(
        declared.path,
        methods=[declared.method],
        authorizer=authorizer if declared.scope is not None else None,
        content_types=ANY_CONTENT_TYPE,
    )(view)


def call_handler(
    handler: Handler,
    request: Request,
    path_params: dict[str, str],
    scope: str | None = None,
    given: Mapping[str, object] = NOTHING_GIVEN,
) -> Response:
    """The handler's answer, or the error body of what it raised. The handler is called with the
    request, its path parameters and what the wrapper ``given`` it by name (an audited route's
    ``audit`` context, the document's ``app``)."""
    declared = endpoint_of(handler)
    face = declared.face if declared else JSON_FACE
    try:
        if scope is not None:
            audit = given.get("audit")
            admit(request, scope, audit if isinstance(audit, AuditContext) else None)
        # Before the unknown-parameter refusal: a client sending patient data in a URL is told
        # where it belongs (the body of POST /patients/search), whatever the route declares.
        refuse_patient_data_in_query(request)
        refuse_undeclared_query_parameters(
            request, declared.query_parameter_names if declared else frozenset()
        )
        response = call_again_if_dropped(handler, request, {**path_params, **given})
    except DomainError as error:
        response = error_response(error, request, face)
    except Exception as error:
        if is_missing_schema(error):  # told by the failed statement's error: no query of its own
            logger.error("database schema missing or out of date (%s)", type(error).__name__)
            response = error_response(SchemaNotMigrated(), request, face)
        else:
            # Never the exception text: database errors can quote the statement.
            logger.exception("unhandled error in %s", handler.__name__)
            response = internal_error_response(request, face)
    return with_base_headers(response)


def call_again_if_dropped(handler: Handler, request: Request, arguments: dict[str, object]) -> Response:
    """The handler's answer; one whose database connection was lost (a server restart, a failover,
    a proxy recycling its connections) before the handler sent any COMMIT runs once more, from the
    start, on a new connection: nothing it did was committed, so its service call (a read, or a
    whole write) can simply be made again. Lost during or after a COMMIT, or again on the second
    run: DatabaseUnavailable (503, retry later), never a 500 and never a third run."""
    with attempt() as first:
        try:
            return handler(request, **arguments)
        except Exception as error:
            if not is_dropped_connection(error):
                raise
            if first.commit_sent:
                logger.warning("database connection lost after a COMMIT was sent; not running again")
                raise DatabaseUnavailable() from None
    logger.warning("database connection lost before any COMMIT; running %s again", handler.__name__)
    try:
        return handler(request, **arguments)
    except Exception as error:
        if not is_dropped_connection(error):
            raise
    logger.warning("database connection lost again on the second run of %s", handler.__name__)
    raise DatabaseUnavailable()


def admit(request: Request, scope: str, audit: AuditContext | None = None) -> None:
    """Let an authenticated request reach its handler. Raises RateLimited, InsufficientScope.

    A refusal after the principal's first in this minute is counted by the rate limiter in Redis
    and settled into the minute's audit row later: its ``audit`` context is recorded already, so
    a flood of refusals writes nothing to the database."""
    principal = principal_of(request)
    # Every authenticated request counts, allowed or not, so a refused token cannot hammer either.
    settings = bootstrap.settings()
    try:
        enforce_rate_limit(principal, settings.rate_limit, settings.redis_url)
    except RateLimited as refusal:
        if audit is not None and not refusal.first_in_window:
            audit.mark_recorded()
        raise
    if scope not in scopes_of(request):
        raise InsufficientScope(scope)


def call_audited(
    action: AuditedAction,
    handler: Handler,
    request: Request,
    path_params: dict[str, str],
    scope: str | None = None,
) -> Response:
    """``call_handler`` given the request's audit context, and no answer without its audit row.

    The handler passes the context to its unit of work or read transaction. A
    committed change has written its row in its own transaction and marked the
    context recorded; anything else (a read, a refusal, a failure) is recorded
    here with the status. If that row cannot be written the client gets a 503
    instead: patient data is never disclosed, nor a refusal given, without a
    record of it.
    """
    raw_id = path_params.get("patient_id")
    context = AuditContext(
        principal=principal_or_none(request) or "anonymous",
        action=action,
        request_id=request_id_of(request),
        patient_id=parse_patient_id(raw_id) if raw_id is not None else None,
    )
    # The handler's read and the audit row share one connection: one checkout per request.
    with one_connection():
        response = call_handler(handler, request, path_params, scope, {"audit": context})
        if not context.recorded:
            declared = endpoint_of(handler)
            face = declared.face if declared else JSON_FACE
            response = record_outcome_or_refuse(context, request, response, face)
    if context.unrecorded:  # by the handler's own recorded read, or here: counted once
        record_audit_unavailable()
    return response


def record_outcome_or_refuse(
    context: AuditContext, request: Request, response: Response, face: str = JSON_FACE
) -> Response:
    """``response``, once its audit row is written; a 503 instead if it cannot be. A connection
    lost under that write is given one more try on a new connection, as a handler's run is."""
    try:
        _record_outcome_again_if_dropped(context, response.status_code)
    except Exception as error:
        logger.exception("audit trail write failed for %s", context.action.name)
        context.mark_unrecorded()
        return with_base_headers(error_response(_audit_refusal(error), request, face))
    return response


def _audit_refusal(error: Exception) -> DomainError:
    """Why the answer is withheld: a missing schema, the database itself (unreachable, or its
    connection lost twice: retry after ``Retry-After``), or the audit trail."""
    if is_missing_schema(error):
        return SchemaNotMigrated()
    if isinstance(error, DatabaseUnavailable) or is_dropped_connection(error):
        return DatabaseUnavailable()
    return AuditUnavailable()


def _record_outcome_again_if_dropped(context: AuditContext, status: int) -> None:
    durable_reads = bootstrap.settings().durable_read_audit
    try:
        audit_trail.record_outcome(UnitOfWork(), context, status, durable_reads=durable_reads)
        return
    except Exception as error:
        if not is_dropped_connection(error):
            raise
    # One statement that commits by itself: lost before it ran, it wrote nothing; lost while it
    # ran, it may have, and the trail then holds this answer twice, never not at all.
    logger.warning("database connection lost writing the audit row; writing it again")
    audit_trail.record_outcome(UnitOfWork(), context, status, durable_reads=durable_reads)
