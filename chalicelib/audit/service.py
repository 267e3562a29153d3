"""The audit trail as a service: record an outcome that committed no change, and read the trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.audit.recording import AuditContext, insert_rows
from chalicelib.config.settings import get_settings
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import AuditEvent
from chalicelib.storage.unit_of_work import UnitOfWork
from chalicelib.validation import (
    IntegerParameter,
    QueryParameter,
    TextParameter,
    TimestampParameter,
)

# The scope a token needs for GET /audit.

PATIENT_FILTER = IntegerParameter("patient_id", 1, 2**63 - 1, "Only events about this patient.")
PRINCIPAL_FILTER = TextParameter("principal", 255, "Only events of this principal (a token's name).")
SINCE = TimestampParameter("since", "Only events at or after this time (ISO-8601; UTC when no offset).")
UNTIL = TimestampParameter("until", "Only events before this time (ISO-8601; UTC when no offset).")
BEFORE = IntegerParameter(
    "before", 1, 2**63 - 1, "Cursor: events older than the one with this id. The `next` link carries it."
)


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[AuditEvent]
    per_page: int
    next_before: int | None  # the cursor of the following page; None on the last one


def record_outcome(context: AuditContext, status: int) -> None:
    """Write the row of a request that committed no change (a read, a refusal, a failure).

    Its own short transaction. Raises whatever the database raises: the caller
    decides that an unrecorded answer is not given.
    """
    # One INSERT on a bare connection: a Session around it would add a third to the cost of
    # every read, and there is nothing else in this transaction for a unit of work to order.
    with get_engine().begin() as connection:
        insert_rows(connection, [context.row(status=status)])


def list_parameters() -> tuple[QueryParameter, ...]:
    """The query parameters of GET /audit."""
    return PATIENT_FILTER, PRINCIPAL_FILTER, SINCE, UNTIL, BEFORE, _per_page()


def list_audit_events(
    *,
    patient_id: str | None = None,
    principal: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: str | None = None,
    per_page: str | None = None,
) -> AuditPage:
    """One page of events, newest first, matching every filter given (raw query values).

    Raises ValidationFailed naming the first parameter that is not valid.
    """
    size = _per_page().parse_or_default(per_page)
    before_id, patient, who = (
        BEFORE.parse(before),
        PATIENT_FILTER.parse(patient_id),
        PRINCIPAL_FILTER.parse(principal),
    )
    start, end = SINCE.parse(since), UNTIL.parse(until)
    with UnitOfWork() as uow:
        # One row more than the page holds tells whether a next page exists.
        rows = uow.audit_events.newest_first(
            limit=size + 1, before_id=before_id, patient_id=patient, principal=who, since=start, until=end
        )
    shown = rows[:size]
    return AuditPage(shown, size, shown[-1].id if len(rows) > size else None)


def _per_page() -> IntegerParameter:
    settings = get_settings()
    return IntegerParameter(
        "per_page", 1, settings.max_per_page, "Events per page.", default=settings.default_per_page
    )
