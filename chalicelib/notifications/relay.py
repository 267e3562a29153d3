"""The relay: hands off again the outbox notifications whose hand-off is overdue.

A scheduled function runs it (``functions/relay_notifications.py``); the API's
requests never do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.notifications import broker
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import NotificationStatus, utc_now

logger = logging.getLogger("telehealth.notifications")

RELAY_BATCH = 500


@dataclass(frozen=True)
class RelayRun:
    """What one relay run did: how many notifications it handed off, how long the oldest
    notification still ``pending`` after it (a hand-off that keeps failing) has waited, if any, how
    long the oldest still ``queued`` (handed off, no worker has taken it yet) has, if any, and how
    many messages then waited in the worker's queue (None: Redis could not say)."""

    handed_off: int
    oldest_pending_age_seconds: float | None
    oldest_queued_age_seconds: float | None = None
    queue_length: int | None = None


def relay_notifications(
    uow: UnitOfWork,
    *,
    relay_delay: float,
    hand_off: Callable[[str], bool] = broker.hand_off,
    queue_length: Callable[[], int | None] = broker.queue_length,
) -> RelayRun:
    """Hand off again every notification whose next step is overdue; say what the run did.

    Two short transactions in ``uow`` per batch: take the due rows, then mark those handed off;
    a last one reads the oldest notifications still pending and still queued; then
    ``queue_length`` counts the worker's backlog, what the worker service scales on
    (``deploy.worker_service``). Safe to run twice at once: a row taken by one run is postponed
    past its due time, so the other never takes it.

    Overdue: pending or queued past the relay delay (hand-off failed, or the
    message was lost with Redis), retrying past its longest backoff, or
    claimed by a worker whose claim expired.
    """
    overdue_after = timedelta(seconds=relay_delay)
    handed_off = 0
    while True:
        now = utc_now()
        with uow:
            taken = uow.notifications.take_due_for_relay(
                now=now, until=now + overdue_after, limit=RELAY_BATCH
            )
            uow.commit()
        sent = []
        for notification_id in taken:
            if not hand_off(notification_id):
                break  # the broker is down: the rest waits for a later run
            sent.append(notification_id)
        if sent:
            with uow:
                uow.notifications.mark_queued(sent, utc_now())
                uow.commit()
        handed_off += len(sent)
        if len(sent) < RELAY_BATCH:
            break
    with uow:
        oldest_pending = uow.notifications.oldest_created_with_status(NotificationStatus.PENDING)
        oldest_queued = uow.notifications.oldest_created_with_status(NotificationStatus.QUEUED)
    now = utc_now()
    if handed_off:
        logger.info("relay handed off overdue notifications", extra={"count": handed_off})
    return RelayRun(
        handed_off=handed_off,
        oldest_pending_age_seconds=(now - oldest_pending).total_seconds() if oldest_pending else None,
        oldest_queued_age_seconds=(now - oldest_queued).total_seconds() if oldest_queued else None,
        queue_length=queue_length(),
    )
