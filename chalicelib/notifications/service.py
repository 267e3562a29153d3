"""Notification service: the outbox written with each patient change, and its status for clients.

``record_patient_change`` runs inside the patient service's unit of work, so a
change and its notification commit or roll back together; the hand-off to
the broker happens only after that commit.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.config.settings import get_settings
from chalicelib.errors import NotificationNotFound, PatientNotFound
from chalicelib.notifications.dispatch import (
    EXPIRED_TASK_STATE,
    NO_RESULT_TASK_STATE,
    hand_off_after_commit,
    task_states,
)
from chalicelib.notifications.events import channels_for
from chalicelib.storage.models import Notification, NotificationStatus, Patient, utc_now
from chalicelib.storage.unit_of_work import UnitOfWork
from chalicelib.validation import (
    PAGE,
    ChoiceParameter,
    IntegerParameter,
    parse_patient_id,
    per_page_parameter,
)

STATUS_FILTER = ChoiceParameter(
    "status",
    NotificationStatus.ALL,
    NotificationStatus.FAILED,
    "Which notifications to list; `failed` (the default) lists the dead letters.",
)


@dataclass(frozen=True)
class NotificationView:
    notification: Notification
    task_state: str


@dataclass(frozen=True)
class NotificationPage:
    total: int
    pages: int
    page: int
    per_page: int
    notifications: Sequence[NotificationView]


def record_patient_change(
    uow: UnitOfWork, patient: Patient, event: str, correlation_id: str | None
) -> Notification:
    """Add the notification for ``event`` to ``uow`` and hand it off once ``uow`` commits."""
    now = utc_now()
    notification = uow.notifications.add(
        Notification(
            id=str(uuid.uuid4()),
            patient_id=patient.id,
            event=event,
            channels=",".join(channels_for(patient.phone_e164)),
            status=NotificationStatus.QUEUED,  # the hand-off after commit marks it pending if it fails
            attempts=0,
            delivered_channels="",
            correlation_id=correlation_id[:64] if correlation_id else None,
            created_at=now,
            updated_at=now,
            next_attempt_at=now + timedelta(seconds=get_settings().notifications.relay_delay),
        )
    )
    hand_off_after_commit(uow, notification.id)
    return notification


def get_notification(raw_id: str) -> NotificationView:
    """Raises NotificationNotFound, also for ids that cannot exist."""
    notification_id = _parse_notification_id(raw_id)
    with UnitOfWork() as uow:
        notification = uow.notifications.get(notification_id) if notification_id else None
    if notification is None:
        raise NotificationNotFound()
    return _with_task_states([notification])[0]


def list_patient_notifications(
    raw_patient_id: str, raw_page: str | None, raw_per_page: str | None
) -> NotificationPage:
    """The patient's notifications, oldest first.

    Raises PatientNotFound when the patient does not exist (also once deleted: its
    notifications stay readable by id and by status), ValidationFailed for bad paging values.
    """
    patient_id = parse_patient_id(raw_patient_id)
    if patient_id is None:
        raise PatientNotFound()
    page, per_page = _paging(raw_page, raw_per_page)
    with UnitOfWork() as uow:
        if uow.patients.get(patient_id) is None:
            raise PatientNotFound()
        total = uow.notifications.count_for_patient(patient_id)
        rows = uow.notifications.page_for_patient(patient_id, offset=(page - 1) * per_page, limit=per_page)
    return NotificationPage(total, math.ceil(total / per_page), page, per_page, _with_task_states(rows))


def list_notifications_with_status(
    raw_status: str | None, raw_page: str | None, raw_per_page: str | None
) -> NotificationPage:
    """Every notification in one status (``failed`` by default: the dead letters), oldest first.

    Raises ValidationFailed for an unknown status or bad paging values.
    """
    status = STATUS_FILTER.parse(raw_status)
    page, per_page = _paging(raw_page, raw_per_page)
    with UnitOfWork() as uow:
        total = uow.notifications.count_with_status(status)
        rows = uow.notifications.page_with_status(status, offset=(page - 1) * per_page, limit=per_page)
    return NotificationPage(total, math.ceil(total / per_page), page, per_page, _with_task_states(rows))


def paging_parameters() -> tuple[IntegerParameter, IntegerParameter]:
    """The page and per_page query parameters of a notification list."""
    settings = get_settings()
    return PAGE, per_page_parameter(default=settings.default_per_page, maximum=settings.max_per_page)


def status_list_parameters() -> tuple[ChoiceParameter | IntegerParameter, ...]:
    """The query parameters of GET /notifications."""
    return (STATUS_FILTER, *paging_parameters())


def _paging(raw_page: str | None, raw_per_page: str | None) -> tuple[int, int]:
    page, per_page = paging_parameters()
    return page.parse_or_default(raw_page), per_page.parse_or_default(raw_per_page)


def _with_task_states(rows: Sequence[Notification]) -> list[NotificationView]:
    states = task_states([row.id for row in rows])
    return [NotificationView(row, _task_state(row, states[row.id])) for row in rows]


def _task_state(row: Notification, celery_state: str) -> str:
    # Without a result, Celery's PENDING would read "not run yet" for a notification that is
    # finished: nothing more will happen to it (a cancelled one's task, if still queued, does nothing).
    if celery_state == NO_RESULT_TASK_STATE and row.status in NotificationStatus.FINISHED:
        return EXPIRED_TASK_STATE
    return celery_state


def _parse_notification_id(raw: str) -> str | None:
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else None
    except ValueError:
        return None
