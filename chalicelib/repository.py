"""Queries over the patient and notification tables. Turns constraint violations into domain errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
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

    def page(self, *, offset: int, limit: int) -> Sequence[Patient]:
        query = select(Patient).order_by(Patient.id).offset(offset).limit(limit)
        return self._session.scalars(query).all()


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

    def mark_queued(self, notification_ids: Sequence[str], now: datetime) -> None:
        """Record a hand-off; a worker may already have moved past ``pending``."""
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

    def claim(self, notification_id: str, *, now: datetime, until: datetime) -> int | None:
        """Take the notification for one delivery attempt; return the attempt number, or None.

        Claimable: not yet claimed, or claimed by a worker whose claim expired (it died).
        """
        claimed = self._session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status.in_(NotificationStatus.CLAIMABLE)
                | (
                    (Notification.status == NotificationStatus.SENDING)
                    & (Notification.next_attempt_at <= now)
                ),
            )
            .values(
                status=NotificationStatus.SENDING,
                attempts=Notification.attempts + 1,
                updated_at=now,
                next_attempt_at=until,
            )
            .returning(Notification.attempts)
        ).scalar_one_or_none()
        return claimed

    def finish_attempt(self, notification_id: str, attempt: int, **values: Any) -> bool:
        """Record the outcome of attempt number ``attempt``, unless another attempt has claimed it since."""
        result = self._session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.attempts == attempt,
                Notification.status.not_in(NotificationStatus.FINISHED),
            )
            .values(**values)
        )
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
