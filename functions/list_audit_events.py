from urllib.parse import urlencode

from chalice.app import Request, Response

from chalicelib.access.scopes import AUDIT_READ
from chalicelib.audit import service as audit_trail
from chalicelib.errors import InsufficientScope, UnacceptableValue, ValidationFailed
from chalicelib.http.openapi import AUDIT_TAG, Reply, operation
from chalicelib.http.routes import iso_utc, json_response
from chalicelib.storage.models import AuditEvent

FILTERS = ("patient_id", "principal", "since", "until")


@operation(
    summary="Read the audit trail, newest first",
    description="Who read or changed patient data, when, and how it ended. Needs a token with the"
    f" `{AUDIT_READ}` scope. Filters combine; follow `next` for older events.",
    tag=AUDIT_TAG,
    query=audit_trail.list_parameters,
    replies={200: Reply("One page of audit events", "AuditEventList")},
    errors=(ValidationFailed, UnacceptableValue, InsufficientScope),
)
def list_audit_events(request: Request) -> Response:
    query = request.query_params or {}
    page = audit_trail.list_audit_events(
        **{name: query.get(name) for name in (*FILTERS, "before", "per_page")}
    )
    return json_response(
        {
            "events": [audit_event_json(event) for event in page.events],
            "per_page": page.per_page,
            "next": next_link(request, page),
        }
    )


def audit_event_json(event: AuditEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "occurred_at": iso_utc(event.occurred_at),
        "principal": event.principal,
        "action": event.action,
        "patient_id": event.patient_id,
        "status": event.status,
        "request_id": event.request_id,
    }


def next_link(request: Request, page: audit_trail.AuditPage) -> str | None:
    if page.next_before is None:
        return None
    query = request.query_params or {}
    kept = {name: query[name] for name in FILTERS if name in query}
    # The path as the client called it, so API Gateway's stage prefix (/api) stays in the link.
    path = (request.context or {}).get("path") or "/audit"
    return f"{path}?{urlencode({**kept, 'before': page.next_before, 'per_page': page.per_page})}"
