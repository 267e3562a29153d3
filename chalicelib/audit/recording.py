"""Who read or changed which patient: the audit context of a request, and the rows of its changes.

The HTTP wrapper (``chalicelib.http.routes``) creates an ``AuditContext`` for each
audited route (principal, action, request id, the patient named in the path) and
hands it to the handler, which hands it to the unit of work or read transaction it
builds; a service that names the patient, or answers with another action, does so
on that object (``uow.audit``, ``reads.audit``). The audit trail joins every unit of
work whose session changes a patient (``watch_patient_changes``): one audit row per
changed patient is written before that commit, in the same transaction, under the
unit of work's context (or ``SYSTEM_PRINCIPAL`` without one), and the context is
marked recorded once the commit succeeded. A change never commits without its row,
and no service has to remember to write one. Whatever commits no change (reads,
refusals, failures) is recorded by the wrapper once the status is known
(``chalicelib.audit.service.record_outcome``).

Audit rows hold ids, action names, statuses and request ids: never a name,
email or phone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from chalicelib.audit.queries import AuditRow, insert_rows
from chalicelib.storage.models import Patient, utc_now

# Written by changes made outside any request (scripts, a shell): someone still did them.
SYSTEM_PRINCIPAL = "system"
MAX_PRINCIPAL_LENGTH = 255
MAX_REQUEST_ID_LENGTH = 128


@dataclass(frozen=True)
class AuditedAction:
    name: str
    # A change commits before its response exists: this is the status recorded with it.
    success_status: int = 200
    # The route only reads: its row may commit without waiting for the WAL flush (AUDIT_READ_COMMIT).
    reads: bool = False
    # The face the request came through ("fhir."), before the names of the changes it commits and
    # of a replay, so the trail tells the faces apart (``patient.create`` / ``fhir.patient.create``).
    face_prefix: str = ""

    def named(self, action: str) -> str:
        """``action`` (a change's or a replay's name) as a request of this action's face records it."""
        return f"{self.face_prefix}{action}"


CREATE_PATIENT = AuditedAction("patient.create", success_status=201)
READ_PATIENT = AuditedAction("patient.read", reads=True)
UPDATE_PATIENT = AuditedAction("patient.update")
DELETE_PATIENT = AuditedAction("patient.delete")
LIST_PATIENTS = AuditedAction("patient.list", reads=True)
SEARCH_PATIENTS = AuditedAction("patient.search", reads=True)
# Notifications name patients and their change events; the trail names who accessed whom.
LIST_NOTIFICATIONS = AuditedAction("notification.list", reads=True)
READ_NOTIFICATION = AuditedAction("notification.read", reads=True)
LIST_PATIENT_NOTIFICATIONS = AuditedAction("patient.notifications", reads=True)
READ_AUDIT = AuditedAction("audit.read", reads=True)
# The same patients through the FHIR face (``functions/fhir_*.py``): the same rows, told apart.
FHIR = "fhir."
FHIR_CREATE_PATIENT = AuditedAction(FHIR + CREATE_PATIENT.name, success_status=201, face_prefix=FHIR)
FHIR_READ_PATIENT = AuditedAction(FHIR + READ_PATIENT.name, reads=True, face_prefix=FHIR)
FHIR_UPDATE_PATIENT = AuditedAction(FHIR + UPDATE_PATIENT.name, face_prefix=FHIR)
FHIR_DELETE_PATIENT = AuditedAction(FHIR + DELETE_PATIENT.name, face_prefix=FHIR)
FHIR_SEARCH_PATIENTS = AuditedAction(FHIR + SEARCH_PATIENTS.name, reads=True, face_prefix=FHIR)
# A create answered from its Idempotency-Key record: patient data disclosed, nothing changed.
REPLAY_CREATE = "patient.create_replayed"
# Refused by the rate limit, on any route: one row per principal per minute, with the count.
RATE_LIMITED = "request.rate_limited"
ACTIONS = (
    CREATE_PATIENT.name,
    REPLAY_CREATE,
    READ_PATIENT.name,
    UPDATE_PATIENT.name,
    DELETE_PATIENT.name,
    LIST_PATIENTS.name,
    SEARCH_PATIENTS.name,
    LIST_PATIENT_NOTIFICATIONS.name,
    LIST_NOTIFICATIONS.name,
    READ_NOTIFICATION.name,
    READ_AUDIT.name,
    RATE_LIMITED,
    FHIR_CREATE_PATIENT.name,
    FHIR + REPLAY_CREATE,
    FHIR_READ_PATIENT.name,
    FHIR_UPDATE_PATIENT.name,
    FHIR_DELETE_PATIENT.name,
    FHIR_SEARCH_PATIENTS.name,
)


@dataclass
class AuditContext:
    principal: str
    action: AuditedAction
    request_id: str | None
    patient_id: int | None = None
    # Set by a service that answers with something other than the route's action (a replay).
    recorded_action: str | None = None
    # True once a committed change wrote the request's row; the wrapper then writes none.
    recorded: bool = False
    # The patients the answer shows besides ``patient_id`` (a page of a list or of a search): the
    # accounting of disclosures records them with the request's row.
    disclosed: tuple[int, ...] = ()
    # True once the answer was withheld because its record could not be written (counted once).
    unrecorded: bool = False

    def mark_recorded(self) -> None:
        self.recorded = True

    def mark_unrecorded(self) -> None:
        self.unrecorded = True

    def disclose(self, patient_ids: Iterable[int]) -> None:
        """Name the patients the answer shows (a page of patients)."""
        self.disclosed = tuple(patient_ids)

    def note_patient(self, patient_id: int, *, action: str | None = None) -> None:
        """Name the patient (and, for a replay, the action) of the request, when its path does not."""
        self.patient_id = patient_id
        self.recorded_action = self.action.named(action) if action else self.recorded_action

    def row(self, *, status: int | None, at: datetime | None = None, action: str | None = None) -> AuditRow:
        return audit_row(
            principal=self.principal,
            action=action or self.recorded_action or self.action.name,
            patient_id=self.patient_id,
            status=status,
            request_id=self.request_id,
            at=at,
        )


def audit_row(
    *,
    principal: str,
    action: str,
    patient_id: int | None,
    status: int | None,
    request_id: str | None,
    at: datetime | None = None,
) -> AuditRow:
    return {
        "occurred_at": at or utc_now(),
        "principal": principal[:MAX_PRINCIPAL_LENGTH],
        "action": action,
        "patient_id": patient_id,
        "status": status,
        "request_id": request_id[:MAX_REQUEST_ID_LENGTH] if request_id else None,
    }


class AuditedWork(Protocol):
    """What the audit trail needs of the unit of work it joins."""

    audit: AuditContext | None

    def before_commit(self, step: Callable[[], None], *, last: bool = False) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


def watch_patient_changes(session: Session, uow: AuditedWork) -> None:
    """Write an audit row for each patient ``session`` inserts, updates or deletes, before ``uow`` commits.

    The first flush that changes a patient makes the audit trail a step of ``uow``'s commit;
    a unit of work that changes no patient (a delivery, a relay) commits without it.
    """
    event.listen(session, "after_flush", _PatientChanges(uow).collect)


class _PatientChanges:
    """The patients one session has flushed changes to, by id: the action of the first change."""

    def __init__(self, uow: AuditedWork) -> None:
        self._uow = uow
        self._changed: dict[int, str] = {}

    def collect(self, session: Session, _flush_context: Any) -> None:
        # After a flush, new/dirty/deleted still describe what it wrote, and new rows have their ids.
        joined = bool(self._changed)
        for action, instances in (
            (CREATE_PATIENT.name, session.new),
            (UPDATE_PATIENT.name, session.dirty),
            (DELETE_PATIENT.name, session.deleted),
        ):
            for instance in instances:
                if isinstance(instance, Patient) and (
                    action != UPDATE_PATIENT.name or session.is_modified(instance)
                ):
                    self._changed.setdefault(instance.id, action)
        if self._changed and not joined:
            self._uow.before_commit(lambda: self._record(session))

    def _record(self, session: Session) -> None:
        changed, self._changed = self._changed, {}
        context = self._uow.audit
        record_changes(session, changed, context)
        if context is not None:
            self._uow.after_commit(context.mark_recorded)


def record_changes(session: Session, changed: dict[int, str], context: AuditContext | None) -> None:
    """Add an audit row for each changed patient (id: action) to ``session``'s transaction, under
    ``context``, or as ``SYSTEM_PRINCIPAL`` for a change made outside any request."""
    now = utc_now()
    rows = []
    for patient_id, action in changed.items():
        if context is None:
            rows.append(
                audit_row(
                    principal=SYSTEM_PRINCIPAL,
                    action=action,
                    patient_id=patient_id,
                    status=None,
                    request_id=None,
                    at=now,
                )
            )
        else:
            context.patient_id = patient_id
            rows.append(
                context.row(status=context.action.success_status, at=now, action=context.action.named(action))
            )
    insert_rows(session, rows)
