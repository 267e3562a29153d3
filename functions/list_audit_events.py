from chalice.app import Request, Response

from chalicelib.audit import service as audit_trail
from chalicelib.audit.recording import READ_AUDIT, AuditContext
from chalicelib.audit.shapes import audit_event_json
from chalicelib.errors import InsufficientScope, UnacceptableValue, ValidationFailed
from chalicelib.http.endpoints import AUDIT_TAG, Reply, endpoint
from chalicelib.http.requests import next_page_link
from chalicelib.http.responses import json_response
from chalicelib.scopes import AUDIT_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction

FILTERS = ("patient_id", "principal", "since", "until")


@endpoint(
    "GET",
    "/audit",
    scope=AUDIT_READ,
    audit=READ_AUDIT,
    summary="Read the audit trail, newest first",
    description="Who read or changed patient data, when, and how it ended. Needs a token with the"
    f" `{AUDIT_READ}` scope. Filters combine; follow `next` for older events.",
    tag=AUDIT_TAG,
    query=audit_trail.list_parameters,
    replies={200: Reply("One page of audit events", "AuditEventList")},
    errors=(ValidationFailed, UnacceptableValue, InsufficientScope),
)
def list_audit_events(request: Request, *, audit: AuditContext) -> Response:
    query = request.query_params or {}
    page = audit_trail.list_audit_events(
        ReadTransaction(audit=audit), **{name: query.get(name) for name in (*FILTERS, "before", "per_page")}
    )
    return json_response(
        {
            "events": [audit_event_json(event) for event in page.events],
            "per_page": page.per_page,
            "next": next_page_link(
                request,
                "/audit",
                ("before", page.next_before),
                page.per_page,
                kept={name: query[name] for name in FILTERS if name in query},
            ),
        }
    )
