"""Patient service: the rules for creating, reading, changing and listing patients.

Each public function is one transaction, in the unit of work (writes) or read
transaction (reads) its caller hands it unopened. Inputs are the client's raw
values; errors are the domain errors of ``chalicelib.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.config.settings import PatientSettings
from chalicelib.errors import PatientNotFound, PreconditionFailed
from chalicelib.notifications.events import PATIENT_CREATED, PATIENT_UPDATED
from chalicelib.notifications.service import record_patient_change
from chalicelib.paging import Paging, paging_parameters
from chalicelib.patients import idempotency
from chalicelib.patients.fields import parse_patient_create, parse_patient_update
from chalicelib.patients.idempotency import IdempotencyKey
from chalicelib.patients.preconditions import TagCondition, etag_for
from chalicelib.patients.queries import read_outcome
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.models import Patient, PatientRecord, utc_now
from chalicelib.validation import MAX_ID, IntegerParameter, parse_patient_id

AFTER = IntegerParameter(
    "after",
    0,
    MAX_ID,
    "Cursor: list the patients whose id is greater than this, in id order. The `next` link of each"
    " answer carries it. With `page`, the page-th page after the cursor (default the first).",
)


# The statuses a read by id answers, recorded by its own statement with its audit row.
FOUND, NOT_MODIFIED, NOT_FOUND = 200, 304, 404
_READ_OUTCOME = read_outcome(found=FOUND, unchanged=NOT_MODIFIED, missing=NOT_FOUND)


@dataclass(frozen=True)
class PatientPage:
    total: int
    pages: int
    page: int | None  # None when the page was addressed by cursor
    per_page: int
    patients: Sequence[PatientRecord]
    next_after: int | None  # the cursor of the following page; None on the last page


@dataclass(frozen=True)
class PatientChange:
    patient: Patient
    notification_id: str | None  # the notification announcing the change, committed with it
    replayed: bool = False  # an earlier create with the same Idempotency-Key; the patient as it is now
    # The notification's status once the change committed and was handed off (queued, or pending
    # when the hand-off failed); for a replay, its status now.
    notification_status: str | None = None


def create_patient(
    uow: UnitOfWork,
    payload: Any,
    key: IdempotencyKey | None = None,
    *,
    settings: PatientSettings,
    correlation_id: str | None = None,
) -> PatientChange:
    """Validate and store a new patient with its ``patient.created`` notification.

    Raises ValidationFailed, MalformedRequest, DuplicateEmail. With an idempotency
    ``key`` already used for this body, nothing is created and the earlier create's
    patient (as it is now) and notification come back; used for another body, IdempotencyKeyReused.
    """
    values = parse_patient_create(payload, phone_region=settings.phone_default_region)
    now = utc_now()
    with uow:
        earlier = idempotency.claim(uow, key, now) if key else None
        if earlier is not None:
            patient, notification_id = earlier
            status = uow.notifications.status_of(notification_id) if notification_id else None
            return PatientChange(patient, notification_id, replayed=True, notification_status=status)
        patient = uow.patients.add(Patient(**values, version=1, created_at=now, updated_at=now))
        notification = record_patient_change(
            uow, patient, PATIENT_CREATED, correlation_id, relay_delay=settings.relay_delay
        )
        if key:
            idempotency.complete(uow, key, patient, notification.id)
        uow.commit()
    return PatientChange(patient, notification.id, notification_status=notification.status)


def get_patient(
    reads: ReadTransaction,
    raw_id: str,
    if_none_match: TagCondition | None = None,
    *,
    durable_audit: bool = True,
) -> PatientRecord:
    """The patient, read and recorded as the request's answer in one statement on PostgreSQL:
    its audit row says 200, or 304 when its version is one ``if_none_match`` names (the caller
    answers without a body then), or 404; only a 200 discloses the patient. ``durable_audit``:
    the row waits for the WAL flush (``AUDIT_READ_COMMIT=durable``).

    Raises PatientNotFound, also for ids that cannot exist (then nothing is read or recorded).
    """
    patient_id = _id_or_not_found(raw_id)
    versions = if_none_match.versions_of(patient_id) if if_none_match is not None else ()
    with reads.disclosing(durable=durable_audit) as read:
        patient = read.patients.shown(
            patient_id,
            _READ_OUTCOME,
            unchanged_versions=versions,
            any_version=bool(if_none_match and if_none_match.any),
        )
    if patient is None:
        raise PatientNotFound()
    return patient


def update_patient(
    uow: UnitOfWork,
    raw_id: str,
    payload: Any,
    if_match: TagCondition | None = None,
    *,
    settings: PatientSettings,
    correlation_id: str | None = None,
) -> PatientChange:
    """Apply a partial update, if the patient's version satisfies ``if_match``, and record
    its ``patient.updated`` notification.

    Raises PatientNotFound, ValidationFailed, MalformedRequest, DuplicateEmail, PreconditionFailed.
    """
    patient_id = _id_or_not_found(raw_id)
    values = parse_patient_update(payload, phone_region=settings.phone_default_region)
    with uow:
        patient = _existing(uow, patient_id, for_update=True)
        _require_match(patient, if_match)
        for column, value in values.items():
            setattr(patient, column, value)
        # Strictly later than before, even within one clock tick.
        patient.updated_at = max(utc_now(), patient.updated_at + timedelta(microseconds=1))
        patient.version += 1
        uow.patients.flush()
        notification = record_patient_change(
            uow, patient, PATIENT_UPDATED, correlation_id, relay_delay=settings.relay_delay
        )
        uow.commit()
    return PatientChange(patient, notification.id, notification_status=notification.status)


def delete_patient(uow: UnitOfWork, raw_id: str, if_match: TagCondition | None = None) -> None:
    """Delete the patient, if its version satisfies ``if_match``, and cancel its unsent notifications.

    Raises PatientNotFound, PreconditionFailed.
    """
    with uow:
        patient = _existing(uow, raw_id, for_update=True)
        _require_match(patient, if_match)
        uow.patients.delete(patient)
        uow.idempotency_keys.forget_patient(patient.id)
        uow.notifications.cancel_unsent_for_patient(patient.id, utc_now())
        uow.commit()


def list_parameters() -> tuple[IntegerParameter, IntegerParameter, IntegerParameter]:
    """The query parameters of a patient list: page, per_page, after."""
    return (*paging_parameters(), AFTER)


def list_patients(
    reads: ReadTransaction,
    raw_page: str | None,
    raw_per_page: str | None,
    raw_after: str | None = None,
    *,
    durable_audit: bool = True,
) -> PatientPage:
    """One page in id order, addressed by page number or by cursor (``after``, an id).

    With both, ``page`` counts pages from the cursor (OpenAPI cannot forbid the pair, so
    it has a meaning). The total comes from the maintained counter, so it costs the same
    at any size. The total, the page, the request's audit row and the patients the page shows
    (its disclosures) are one statement on PostgreSQL; ``durable_audit`` as in ``get_patient``.
    Raises ValidationFailed for bad paging values (then nothing is read or recorded).
    """
    page_rule, per_page_rule = paging_parameters()
    per_page = per_page_rule.parse_or_default(raw_per_page)
    after = AFTER.parse(raw_after)
    paging = Paging(page_rule.parse_or_default(raw_page), per_page)
    with reads.disclosing(durable=durable_audit) as read:
        # One row more than the page holds tells whether a next page exists; it is not disclosed.
        total, rows = read.patients.shown_page(shown=per_page, offset=paging.offset, after=after)
    shown = rows[:per_page]
    next_after = shown[-1].id if len(rows) > per_page else None
    # Page numbers count from the start of the list; with a cursor they count from it instead.
    number = paging.page if after is None else None
    return PatientPage(total, paging.pages(total), number, per_page, shown, next_after)


def _id_or_not_found(raw_id: str | int) -> int:
    patient_id = raw_id if isinstance(raw_id, int) else parse_patient_id(raw_id)
    if patient_id is None:
        raise PatientNotFound()
    return patient_id


def _require_match(patient: Patient, if_match: TagCondition | None) -> None:
    # Checked on the row locked for update: no other change can come between the check and ours.
    if if_match is not None and not if_match.matches_strongly(patient.id, patient.version):
        raise PreconditionFailed(etag_for(patient.id, patient.version))


def _existing(uow: UnitOfWork, raw_id: str | int, *, for_update: bool = False) -> Patient:
    patient = uow.patients.get(_id_or_not_found(raw_id), for_update=for_update)
    if patient is None:
        raise PatientNotFound()
    return patient
