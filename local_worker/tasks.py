"""Thin tasks: take ids, do the work through chalicelib's services."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from chalicelib.config import get_settings
from chalicelib.notification_delivery import DeliveryFailed, deliver_notification
from chalicelib.notification_dispatch import RELAY_TASK, SEND_NOTIFICATION_TASK, relay_notifications
from local_worker.celery import app

retries = get_settings().notifications


@app.task(
    bind=True,
    name=SEND_NOTIFICATION_TASK,
    # Redelivered if the worker dies mid-task; safe because delivery claims the row first.
    acks_late=True,
    reject_on_worker_lost=True,
    # OperationalError: the database was unreachable, so nothing was claimed or recorded.
    autoretry_for=(DeliveryFailed, OperationalError),
    retry_backoff=retries.retry_backoff,
    retry_backoff_max=retries.retry_backoff_max,
    retry_jitter=True,
    max_retries=retries.max_retries,
)
def send_notification(self: object, notification_id: str) -> str:
    return deliver_notification(notification_id).value


@app.task(name=RELAY_TASK, ignore_result=True)
def relay_overdue_notifications() -> int:
    return relay_notifications()
