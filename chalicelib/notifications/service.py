"""Notification service: the outbox written with each patient change, and its status for clients.

``record_patient_change`` runs inside the patient service's unit of work, so a
change and its notification commit or roll back together; the hand-off to
the broker happens only after that commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.errors import NotificationNotFound, PatientNotFound
from chalicelib.notifications.events import channels_for
from chalicelib.paging import Paging, paging_parameters, parse_paging
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.models import Notification, NotificationRecord, NotificationStatus, Patient, utc_now
from chalicelib.validation import ChoiceParameter, IntegerParameter, parse_patient_id

logger = logging.getLogger("telehealth.notifications")

STATUS_FILTER = ChoiceParameter(
    "status",
    NotificationStatus.ALL,
    NotificationStatus.FAILED,
    "Which notifications to list; `failed` (the default) lists the dead letters.",
)


@dataclass(frozen=True)
class NotificationView:
    notification: NotificationRecord
    task_state: str


@dataclass(frozen=True)
class NotificationPage:
    total: int
    pages: int
    page: int
    per_page: int
    notifications: Sequence[NotificationView]


def record_patient_change(
    uow: UnitOfWork, patient: Patient, event: str, correlation_id: str | None, *, relay_delay: float
) -> Notification:
    """Add the notification for ``event`` to ``uow`` and hand it off once ``uow`` commits; if that
    hand-off is lost, the relay takes it ``relay_delay`` seconds after the change."""
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
            next_attempt_at=now + timedelta(seconds=relay_delay),
        )
    )
    hand_off_after_commit(uow, notification)
    return notification


def hand_off_after_commit(uow: UnitOfWork, notification: Notification) -> None:
    """Hand the notification off to the broker once ``uow`` has committed the row that describes it.

    The row is written ``queued``, so a successful hand-off (the usual case)
    costs no second write; a failed one marks it ``pending`` for the relay, and
    ``notification`` (what the change answers with) then says ``pending`` too.
    """

    def hand_off() -> None:
        if not _hand_off_or_mark_pending(notification.id):
            notification.status = NotificationStatus.PENDING

    uow.after_commit(hand_off)


def _hand_off_or_mark_pending(notification_id: str) -> bool:
    """Whether the broker took the notification; if not, its row is marked ``pending``."""
    # The broker module (and Celery) only for the requests that hand something off.
    from chalicelib.notifications import broker

    if broker.hand_off(notification_id):
        return True
    try:
        # A transaction of its own, after the change's: the unit of work that committed is still open.
        with UnitOfWork() as uow:
            uow.notifications.mark_pending(notification_id, utc_now())
            uow.commit()
    except Exception as error:
        # Still "queued" and overdue after the relay delay: the relay hands it off all the same.
        logger.warning(
            "could not mark notification pending",
            extra={"notification_id": notification_id, "error": type(error).__name__},
        )
    return False


def get_notification(reads: ReadTransaction, raw_id: str) -> NotificationView:
    """Raises NotificationNotFound, also for ids that cannot exist. The audit context of ``reads``
    (if any) names the patient the notification is about."""
    notification_id = _parse_notification_id(raw_id)
    if notification_id is None:
        raise NotificationNotFound()
    with reads:
        notification = reads.notifications.get(notification_id)
    if notification is None:
        raise NotificationNotFound()
    if reads.audit is not None:
        # The audit row names whose change this notification announced.
        reads.audit.note_patient(notification.patient_id)
    return _with_task_states([notification])[0]


def list_patient_notifications(
    reads: ReadTransaction, raw_patient_id: str, raw_page: str | None, raw_per_page: str | None
) -> NotificationPage:
    """The patient's notifications, oldest first.

    Raises PatientNotFound when the patient does not exist (also once deleted: its
    notifications stay readable by id and by status), ValidationFailed for bad paging values.
    """
    patient_id = parse_patient_id(raw_patient_id)
    if patient_id is None:
        raise PatientNotFound()
    paging = parse_paging(raw_page, raw_per_page)
    with reads:
        if reads.patients.get(patient_id) is None:
            raise PatientNotFound()
        total = reads.notifications.count_for_patient(patient_id)
        rows = reads.notifications.page_for_patient(patient_id, offset=paging.offset, limit=paging.per_page)
    return _page(paging, total, rows)


def list_notifications_with_status(
    reads: ReadTransaction, raw_status: str | None, raw_page: str | None, raw_per_page: str | None
) -> NotificationPage:
    """Every notification in one status (``failed`` by default: the dead letters), oldest first.

    Raises ValidationFailed for an unknown status or bad paging values.
    """
    status = STATUS_FILTER.parse(raw_status)
    paging = parse_paging(raw_page, raw_per_page)
    with reads:
        total = reads.notifications.count_with_status(status)
        rows = reads.notifications.page_with_status(status, offset=paging.offset, limit=paging.per_page)
    return _page(paging, total, rows)


def status_list_parameters() -> tuple[ChoiceParameter | IntegerParameter, ...]:
    """The query parameters of GET /notifications."""
    return (STATUS_FILTER, *paging_parameters())


def _page(paging: Paging, total: int, rows: Sequence[NotificationRecord]) -> NotificationPage:
    return NotificationPage(total, paging.pages(total), paging.page, paging.per_page, _with_task_states(rows))


def _with_task_states(rows: Sequence[NotificationRecord]) -> list[NotificationView]:
    # The broker's module only for the requests that show task states: a patient read never does.
    from chalicelib.notifications import broker

    states = broker.task_states([row.id for row in rows])
    views = []
    for row in rows:
        state = states[row.id]
        # Without a result, Celery's PENDING would read "not run yet" for a notification that is
        # finished: nothing more will happen to it (a cancelled one's task, if still queued, does nothing).
        if state == broker.NO_RESULT_TASK_STATE and row.status in NotificationStatus.FINISHED:
            state = broker.EXPIRED_TASK_STATE
        views.append(NotificationView(row, state))
    return views


def _parse_notification_id(raw: str) -> str | None:
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else None
    except ValueError:
        return None
