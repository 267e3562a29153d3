"""The JSON shape of an audit event: who, what, when and how it ended; never a name, email or phone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.shapes import iso_utc

if TYPE_CHECKING:
    from chalicelib.storage.models import AuditEventRecord


# The keys of every event, in the order shown (the document's list of required properties).
AUDIT_EVENT_FIELDS = (
    "id",
    "occurred_at",
    "principal",
    "action",
    "patient_id",
    "status",
    "request_id",
    "count",
)


def audit_event_json(event: AuditEventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": iso_utc(event.occurred_at),
        "principal": event.principal,
        "action": event.action,
        "patient_id": event.patient_id,
        "status": event.status,
        "request_id": event.request_id,
        "count": event.count,
    }
