"""Queries over the ``notifications`` table, the outbox.

``NotificationRepository`` changes rows inside a ``UnitOfWork``: every state
change is a conditional UPDATE, so two workers never both win a claim.
``NotificationReader`` answers reads inside a ``ReadTransaction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from chalicelib.storage.models import Notification, NotificationRecord, NotificationStatus


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
    # When the change that wrote it committed (to within its transaction): commit-to-delivered time.
    created_at: datetime


# Statements built once, on the table rather than the mapped class: building SQLAlchemy
# expressions, and ORM execution, cost more per delivery than running the SQL.
_NOTIFICATIONS = cast(Table, Notification.__table__)
_notifications = _NOTIFICATIONS.c
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
        _notifications.created_at,
    )
)
# An outcome counts only for the attempt that holds the claim (its attempt number).
_THIS_ATTEMPT = update(_NOTIFICATIONS).where(
    _notifications.id == bindparam("notification_id"),
    _notifications.attempts == bindparam("attempt"),
    _notifications.status.not_in(NotificationStatus.FINISHED),
)
# A delivery clears the error of an earlier attempt: shown beside "delivered" it would read as
# current; ``attempts`` still tells that there were retries.
_MARK_DELIVERED = _THIS_ATTEMPT.values(
    status=NotificationStatus.DELIVERED,
    last_error=None,
    delivered_channels=bindparam("delivered"),
    delivered_at=bindparam("now"),
    updated_at=bindparam("now"),
    next_attempt_at=None,
)
_MARK_ATTEMPT_FAILED = _THIS_ATTEMPT.values(
    status=bindparam("new_status"),
    last_error=bindparam("error"),
    delivered_channels=bindparam("delivered"),
    updated_at=bindparam("now"),
    next_attempt_at=bindparam("retry_by"),
)
_MARK_CANCELLED = _THIS_ATTEMPT.values(
    status=NotificationStatus.CANCELLED, updated_at=bindparam("now"), next_attempt_at=None
)
_STATUS = select(_notifications.status).where(_notifications.id == bindparam("notification_id"))


class NotificationRepository:
    """The outbox's writes. State changes are conditional UPDATEs, so two workers never both win a claim."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, notification: Notification) -> Notification:
        self._session.add(notification)
        self._session.flush()
        return notification

    def status_of(self, notification_id: str) -> str | None:
        """The notification's status, or None if there is no such notification."""
        return self._session.scalar(_STATUS, {"notification_id": notification_id})

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

    def mark_delivered(self, claim: ClaimedNotification, *, channels: str, now: datetime) -> bool:
        """Mark the claimed attempt delivered, unless another attempt has claimed the row since."""
        params = {**self._attempt(claim), "delivered": channels, "now": now}
        return self._finished(self._session.execute(_MARK_DELIVERED, params))

    def mark_attempt_failed(
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
        return self._finished(self._session.execute(_MARK_ATTEMPT_FAILED, params))

    def mark_cancelled(self, claim: ClaimedNotification, *, now: datetime) -> bool:
        return self._finished(self._session.execute(_MARK_CANCELLED, {**self._attempt(claim), "now": now}))

    @staticmethod
    def _attempt(claim: ClaimedNotification) -> dict[str, object]:
        return {"notification_id": claim.id, "attempt": claim.attempt}

    @staticmethod
    def _finished(result: object) -> bool:
        return bool(getattr(result, "rowcount", 0))

    def take_due_for_relay(self, *, now: datetime, until: datetime, limit: int) -> Sequence[str]:
        """Postpone up to ``limit`` overdue notifications to ``until`` and return their ids.

        The conditional UPDATE lets only one of two concurrent relays take a
        row, and on PostgreSQL each skips the rows the other has locked. An
        expired claim is released (back to ``queued``) so the next attempt can
        claim it.
        """
        due = (
            select(Notification.id)
            .where(Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit)
            # PostgreSQL: rows another relay is taking are skipped, not waited on (no lock-order
            # deadlock between two runs); SQLite runs one writer at a time and ignores it.
            .with_for_update(skip_locked=True)
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

    def oldest_created_with_status(self, status: str) -> datetime | None:
        """When the oldest notification in ``status`` was created; None if there is none."""
        return self._session.scalar(
            select(func.min(Notification.created_at)).where(Notification.status == status)
        )


class NotificationReader:
    """The reads that answer notification requests and checks, as plain records on a bare connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, notification_id: str) -> NotificationRecord | None:
        row = self._connection.execute(_BY_ID, {"notification_id": notification_id}).first()
        return NotificationRecord(*row) if row else None

    def count_for_patient(self, patient_id: int) -> int:
        return self._connection.scalar(_COUNT_FOR_PATIENT, {"patient_id": patient_id}) or 0

    def page_for_patient(self, patient_id: int, *, offset: int, limit: int) -> list[NotificationRecord]:
        """The patient's notifications, oldest first, ``limit`` from position ``offset``."""
        return self._records(_PAGE_FOR_PATIENT, {"patient_id": patient_id, "offset": offset, "limit": limit})

    def count_with_status(self, status: str) -> int:
        return self._connection.scalar(_COUNT_WITH_STATUS, {"status": status}) or 0

    def page_with_status(self, status: str, *, offset: int, limit: int) -> list[NotificationRecord]:
        """The notifications in ``status``, oldest first, ``limit`` from position ``offset``."""
        return self._records(_PAGE_WITH_STATUS, {"status": status, "offset": offset, "limit": limit})

    def _records(self, query: Select[Any], params: dict[str, object]) -> list[NotificationRecord]:
        return [NotificationRecord(*row) for row in self._connection.execute(query, params)]


# In NotificationRecord's field order.
_RECORD = select(*(_notifications[field.name] for field in fields(NotificationRecord)))
_BY_ID = _RECORD.where(_notifications.id == bindparam("notification_id"))
_FOR_PATIENT = _notifications.patient_id == bindparam("patient_id")
_WITH_STATUS = _notifications.status == bindparam("status")
_OLDEST_FIRST = (_notifications.created_at, _notifications.id)
_COUNT_FOR_PATIENT = select(func.count()).select_from(_NOTIFICATIONS).where(_FOR_PATIENT)
_COUNT_WITH_STATUS = select(func.count()).select_from(_NOTIFICATIONS).where(_WITH_STATUS)
_PAGE_FOR_PATIENT = (
    _RECORD.where(_FOR_PATIENT).order_by(*_OLDEST_FIRST).offset(bindparam("offset")).limit(bindparam("limit"))
)
_PAGE_WITH_STATUS = (
    _RECORD.where(_WITH_STATUS).order_by(*_OLDEST_FIRST).offset(bindparam("offset")).limit(bindparam("limit"))
)
