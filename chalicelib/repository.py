"""Queries over the patient and notification tables. Turns constraint violations into domain errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.models import Notification, NotificationStatus, Patient

EMAIL_CONSTRAINT = "uq_patients_email_key"


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, patient_id: int, *, for_update: bool = False) -> Patient | None:
        return self._session.get(Patient, patient_id, with_for_update=for_update or None)

    def add(self, patient: Patient) -> Patient:
        self._session.add(patient)
        self.flush()
        return patient

    def flush(self) -> None:
        """Write pending changes now, so the database's constraints decide."""
        try:
            self._session.flush()
        except IntegrityError as error:
            if _violates(error, EMAIL_CONSTRAINT, "patients.email_key"):
                raise DuplicateEmail() from None
            raise

    def delete(self, patient: Patient) -> None:
        self._session.delete(patient)
        self._session.flush()

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(Patient)) or 0

    def contact(self, patient_id: int) -> tuple[str, str | None] | None:
        """The patient's email and E.164 phone, or None if the patient is gone."""
        row = self._session.execute(_CONTACT, {"patient_id": patient_id}).first()
        return (row.email, row.phone_e164) if row else None

    def page(self, *, offset: int, limit: int) -> Sequence[Patient]:
        query = select(Patient).order_by(Patient.id).offset(offset).limit(limit)
        return self._session.scalars(query).all()


@dataclass(frozen=True)
class ClaimedNotification:
    """What a delivery attempt needs, as its claim returned it; ``attempt`` is the claim's version."""

    id: str
    patient_id: int
    event: str
    channels: str
    delivered_channels: str
    correlation_id: str | None
    attempt: int


# The worker's statements are built once, on the tables rather than the mapped
# classes: building SQLAlchemy expressions, and ORM execution, cost more per
# delivery than running the SQL.
_PATIENTS = cast(Table, Patient.__table__)
_NOTIFICATIONS = cast(Table, Notification.__table__)
_patients = _PATIENTS.c
_notifications = _NOTIFICATIONS.c
_CONTACT = select(_patients.email, _patients.phone_e164).where(_patients.id == bindparam("patient_id"))
_CLAIM = (
    update(_NOTIFICATIONS)
    .where(
        _notifications.id == bindparam("notification_id"),
        _notifications.status.in_(NotificationStatus.CLAIMABLE)
        | (
            (_notifications.status == NotificationStatus.SENDING)
            & (_notifications.next_attempt_at <= bindparam("now"))
        ),
    )
    .values(
        status=NotificationStatus.SENDING,
        attempts=_notifications.attempts + 1,
        updated_at=bindparam("now"),
        next_attempt_at=bindparam("until"),
    )
    .returning(
        _notifications.id,
        _notifications.patient_id,
        _notifications.event,
        _notifications.channels,
        _notifications.delivered_channels,
        _notifications.correlation_id,
        _notifications.attempts,
    )
)
# An outcome counts only for the attempt that holds the claim (its attempt number).
_THIS_ATTEMPT = update(_NOTIFICATIONS).where(
    _notifications.id == bindparam("notification_id"),
    _notifications.attempts == bindparam("attempt"),
    _notifications.status.not_in(NotificationStatus.FINISHED),
)
_RECORD_DELIVERED = _THIS_ATTEMPT.values(
    status=NotificationStatus.DELIVERED,
    delivered_channels=bindparam("delivered"),
    delivered_at=bindparam("now"),
    updated_at=bindparam("now"),
    next_attempt_at=None,
)
_RECORD_FAILURE = _THIS_ATTEMPT.values(
    status=bindparam("new_status"),
    last_error=bindparam("error"),
    delivered_channels=bindparam("delivered"),
    updated_at=bindparam("now"),
    next_attempt_at=bindparam("retry_by"),
)
_RECORD_CANCELLED = _THIS_ATTEMPT.values(
    status=NotificationStatus.CANCELLED, updated_at=bindparam("now"), next_attempt_at=None
)


class NotificationRepository:
    """The outbox. State changes are conditional UPDATEs, so two workers never both win a claim."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, notification: Notification) -> Notification:
        self._session.add(notification)
        self._session.flush()
        return notification

    def get(self, notification_id: str) -> Notification | None:
        return self._session.get(Notification, notification_id)

    def count_for_patient(self, patient_id: int) -> int:
        query = select(func.count()).select_from(Notification).where(Notification.patient_id == patient_id)
        return self._session.scalar(query) or 0

    def page_for_patient(self, patient_id: int, *, offset: int, limit: int) -> Sequence[Notification]:
        query = (
            select(Notification)
            .where(Notification.patient_id == patient_id)
            .order_by(Notification.created_at, Notification.id)
            .offset(offset)
            .limit(limit)
        )
        return self._session.scalars(query).all()

    def count_with_status(self, status: str) -> int:
        query = select(func.count()).select_from(Notification).where(Notification.status == status)
        return self._session.scalar(query) or 0

    def page_with_status(self, status: str, *, offset: int, limit: int) -> Sequence[Notification]:
        query = (
            select(Notification)
            .where(Notification.status == status)
            .order_by(Notification.created_at, Notification.id)
            .offset(offset)
            .limit(limit)
        )
        return self._session.scalars(query).all()

    def mark_pending(self, notification_id: str, now: datetime) -> None:
        """Record a failed hand-off, unless the notification has moved on since."""
        self._session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == NotificationStatus.QUEUED)
            .values(status=NotificationStatus.PENDING, updated_at=now)
        )

    def mark_queued(self, notification_ids: Sequence[str], now: datetime) -> None:
        """Record a relay's hand-off; a worker may already have moved past ``pending``."""
        self._session.execute(
            update(Notification)
            .where(Notification.id.in_(notification_ids), Notification.status == NotificationStatus.PENDING)
            .values(status=NotificationStatus.QUEUED, updated_at=now)
        )

    def cancel_unsent_for_patient(self, patient_id: int, now: datetime) -> None:
        self._session.execute(
            update(Notification)
            .where(
                Notification.patient_id == patient_id,
                Notification.status.in_(NotificationStatus.CLAIMABLE),
            )
            .values(status=NotificationStatus.CANCELLED, updated_at=now, next_attempt_at=None)
        )

    def claim(self, notification_id: str, *, now: datetime, until: datetime) -> ClaimedNotification | None:
        """Take the notification for one delivery attempt until ``until``; None if it is not claimable.

        Claimable: not yet claimed, or claimed by a worker whose claim expired (it died).
        """
        row = self._session.execute(
            _CLAIM, {"notification_id": notification_id, "now": now, "until": until}
        ).first()
        return ClaimedNotification(*row) if row else None

    def record_delivered(self, claim: ClaimedNotification, *, channels: str, now: datetime) -> bool:
        """Mark the claimed attempt delivered, unless another attempt has claimed the row since."""
        params = {**self._attempt(claim), "delivered": channels, "now": now}
        return self._finished(self._session.execute(_RECORD_DELIVERED, params))

    def record_failure(
        self,
        claim: ClaimedNotification,
        *,
        final: bool,
        last_error: str,
        channels: str,
        now: datetime,
        next_attempt_at: datetime | None,
    ) -> bool:
        params = {
            **self._attempt(claim),
            "new_status": NotificationStatus.FAILED if final else NotificationStatus.RETRYING,
            "error": last_error,
            "delivered": channels,
            "now": now,
            "retry_by": None if final else next_attempt_at,
        }
        return self._finished(self._session.execute(_RECORD_FAILURE, params))

    def record_cancelled(self, claim: ClaimedNotification, *, now: datetime) -> bool:
        return self._finished(self._session.execute(_RECORD_CANCELLED, {**self._attempt(claim), "now": now}))

    @staticmethod
    def _attempt(claim: ClaimedNotification) -> dict[str, object]:
        return {"notification_id": claim.id, "attempt": claim.attempt}

    @staticmethod
    def _finished(result: object) -> bool:
        return bool(getattr(result, "rowcount", 0))

    def take_due_for_relay(self, *, now: datetime, until: datetime, limit: int) -> Sequence[str]:
        """Postpone up to ``limit`` overdue notifications to ``until`` and return their ids.

        The conditional UPDATE lets only one of two concurrent relays take a
        row. An expired claim is released (back to ``queued``) so the next
        attempt can claim it.
        """
        due = (
            select(Notification.id)
            .where(Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        )
        taken = self._session.execute(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()), Notification.next_attempt_at <= now)
            .values(
                status=case(
                    (Notification.status == NotificationStatus.SENDING, NotificationStatus.QUEUED),
                    else_=Notification.status,
                ),
                next_attempt_at=until,
                updated_at=now,
            )
            .returning(Notification.id)
        )
        return taken.scalars().all()


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return bool(diag.constraint_name == constraint)
    return sqlite_column in str(error.orig)
