"""Thin tasks: take ids, do the work through chalicelib's services."""

from __future__ import annotations

from celery import Task
from sqlalchemy.exc import OperationalError

from chalicelib import bootstrap
from chalicelib.errors import DatabaseUnavailable
from chalicelib.notifications.broker import SEND_NOTIFICATION_TASK
from chalicelib.notifications.delivery import DeliveryFailed, deliver_notification, retry_delay
from chalicelib.service_layer.unit_of_work import UnitOfWork
from local_worker.celery import app

notifications = bootstrap.settings().notifications


@app.task(
    bind=True,
    name=SEND_NOTIFICATION_TASK,
    # Redelivered if the worker dies mid-task; safe because delivery claims the row first.
    acks_late=True,
    reject_on_worker_lost=True,
    # The database counts delivery attempts and decides the last one; this cap also bounds
    # retries after database errors, which claim nothing (the relay picks those up later).
    max_retries=notifications.max_retries,
)
def send_notification(self: Task, notification_id: str) -> str:
    try:
        return deliver_notification(UnitOfWork(), notification_id, notifications).value
    # OperationalError: the connection was lost before the claim's COMMIT, so nothing was claimed
    # (an outcome's write is tried again in-process); DatabaseUnavailable: no connection could be
    # opened, or the claim's COMMIT was lost (then the claim expires before a retry may take it).
    except (DeliveryFailed, OperationalError, DatabaseUnavailable) as error:
        # Our backoff rather than autoretry_for's: see retry_delay.
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries, notifications)) from None
