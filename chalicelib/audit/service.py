"""The audit trail as a service: record an outcome that committed no change, and read the trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.access.rate_limit import RefusalCount, take_closed_refusal_counts
from chalicelib.audit.recording import RATE_LIMITED, AuditContext, audit_row
from chalicelib.config.settings import RateLimitSettings
from chalicelib.paging import configured_per_page
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.models import AuditEventRecord
from chalicelib.validation import (
    MAX_ID,
    IntegerParameter,
    QueryParameter,
    TextParameter,
    TimestampParameter,
)

PATIENT_FILTER = IntegerParameter("patient_id", 1, MAX_ID, "Only events about this patient.")
PRINCIPAL_FILTER = TextParameter("principal", 255, "Only events of this principal (a token's name).")
SINCE = TimestampParameter("since", "Only events at or after this time (ISO-8601; UTC when no offset).")
UNTIL = TimestampParameter("until", "Only events before this time (ISO-8601; UTC when no offset).")
BEFORE = IntegerParameter(
    "before", 1, MAX_ID, "Cursor: events older than the one with this id. The `next` link carries it."
)


# The status of a rate-limited refusal: counted per principal and minute, not written row by row.
TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[AuditEventRecord]
    per_page: int
    next_before: int | None  # the cursor of the following page; None on the last one


def record_outcome(uow: UnitOfWork, context: AuditContext, status: int, *, durable_reads: bool) -> None:
    """Write the row of a request that committed no change (a read, a refusal, a failure), and
    the patients its answer showed (``context.disclosed``, when ``status`` is the action's
    success status) in the same statement on PostgreSQL (the same transaction on SQLite).

    A rate-limited refusal (429) adds one to its principal's refusal row of the
    current minute instead (``RATE_LIMITED``, no patient): a token flooding the
    API adds one row a minute, not one per request, and the count says how hard.
    Only the minute's first refusal comes here: the others are counted in Redis by the rate
    limiter and set into the row once the minute is over (``settle_refusal_counts``).
    One statement, run as such (``uow.one_statement()``): committed when it returns,
    with no BEGIN or COMMIT round trip. On a route that only reads, unless ``durable_reads``
    (``AUDIT_READ_COMMIT=durable``; ``async`` is the default), on PostgreSQL that commit does not wait for the
    WAL flush: visible at once, lost only if the database server crashes within ~0.6 s. Raises whatever the
    database raises: the caller decides that an unrecorded answer is not given.
    """
    # The patients the answer showed (``context.disclose``), if it answered with them.
    disclosed = context.disclosed if status == context.action.success_status else ()
    # One statement on the unit of work's connection: it builds no Session for this, which
    # would add a third to the cost of every read. With disclosures, two on SQLite, in one transaction.
    uow = uow.disclosing() if disclosed else uow.one_statement()
    with uow:
        if status == TOO_MANY_REQUESTS:
            row = context.row(status=status, action=RATE_LIMITED)
            row["patient_id"] = None
            uow.audit_events.count_in_window(row, window_start=refusal_window(row["occurred_at"]))
        else:
            # A read's row alone may skip the wait for the WAL flush; never a change's.
            wait = not context.action.reads or durable_reads
            uow.audit_events.add(context.row(status=status), wait_for_flush=wait, disclosed=disclosed)
        uow.commit()


def settle_refusal_counts(uow: UnitOfWork, redis_url: str, limit: RateLimitSettings, now: datetime) -> int:
    """Set each ended minute's refusal row to the exact count Redis kept for it (inserting the row if
    the minute's first refusal could not write it). One transaction; returns how many rows were set.
    Raises what Redis or the database raise: the counters stay for the next run."""

    def write(counts: list[RefusalCount]) -> None:
        with uow:
            for count in counts:
                row = audit_row(
                    principal=count.principal,
                    action=RATE_LIMITED,
                    patient_id=None,
                    status=TOO_MANY_REQUESTS,
                    request_id=None,
                    at=count.window_start,
                )
                uow.audit_events.set_window_count(row, count.window_start, count.refused)
            uow.commit()

    return take_closed_refusal_counts(redis_url, limit, now, write)


def refusal_window(at: datetime) -> datetime:
    """The start of the window a refusal at ``at`` is counted in: its UTC minute."""
    return at.replace(second=0, microsecond=0)


def list_parameters() -> tuple[QueryParameter, ...]:
    """The query parameters of GET /audit."""
    return PATIENT_FILTER, PRINCIPAL_FILTER, SINCE, UNTIL, BEFORE, _per_page()


def list_audit_events(
    reads: ReadTransaction,
    *,
    patient_id: str | None = None,
    principal: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: str | None = None,
    per_page: str | None = None,
) -> AuditPage:
    """One page of events, newest first, matching every filter given (raw query values).

    With a patient filter, the audit context of ``reads`` (if any) names that patient.

    Raises ValidationFailed naming the first parameter that is not valid.
    """
    size = _per_page().parse_or_default(per_page)
    before_id, patient, who = (
        BEFORE.parse(before),
        PATIENT_FILTER.parse(patient_id),
        PRINCIPAL_FILTER.parse(principal),
    )
    start, end = SINCE.parse(since), UNTIL.parse(until)
    if patient is not None and reads.audit is not None:
        # Reading a patient's trail is an access to that patient's history: its row names them.
        reads.audit.note_patient(patient)
    with reads:
        # One row more than the page holds tells whether a next page exists.
        rows = reads.audit_events.newest_first(
            limit=size + 1, before_id=before_id, patient_id=patient, principal=who, since=start, until=end
        )
    shown = rows[:size]
    return AuditPage(shown, size, shown[-1].id if len(rows) > size else None)


def _per_page() -> IntegerParameter:
    return configured_per_page("Events")
