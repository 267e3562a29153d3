"""Delivery of one notification, as the worker's task runs it: claim, deliver, record.

A notification is delivered at most once per claim. The claim is a
conditional UPDATE that only one attempt can win; the outcome is recorded
only if that claim still holds (the attempt counter is its version). A second
run of a delivered, failed or cancelled notification, or one that another
worker is delivering, does nothing. A worker that dies holding a claim is
replaced once the claim expires (``NOTIFY_CLAIM_TIMEOUT``): the one case where
a delivery can repeat is a worker that dies after the provider accepted and
before the database recorded it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import NoReturn

from chalicelib.config.notifications import NotificationSettings
from chalicelib.errors import DatabaseUnavailable
from chalicelib.notifications.events import channels_for
from chalicelib.notifications.providers import (
    MissingAddress,
    OutgoingNotification,
    Recipient,
    providers_by_channel,
)
from chalicelib.notifications.queries import ClaimedNotification
from chalicelib.observability.metrics import metrics_batch, record_delivered, record_delivery_failure
from chalicelib.observability.structured_logging import log_context
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import is_dropped_connection
from chalicelib.storage.models import NotificationStatus, utc_now

logger = logging.getLogger("telehealth.notifications")

LAST_ERROR_MAX_LENGTH = 200
# Seconds to wait before each new try at recording an attempt's outcome when the database
# connection was lost: soon (a recycled connection), then once more after a short failover.
OUTCOME_WRITE_PAUSES = (0.2, 2.0)


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    CANCELLED = "cancelled"  # the patient is gone
    ALREADY_FINISHED = "already_finished"  # a second run of a delivered, failed or cancelled one
    CLAIMED_ELSEWHERE = "claimed_elsewhere"  # another worker is delivering it now
    NOT_FOUND = "not_found"


class DeliveryFailed(Exception):
    """An attempt failed and another one is due. The text is safe to store and log."""


class DeliveryAbandoned(Exception):
    """The last allowed attempt failed: the notification is now ``failed``."""


class SimulatedFailure(Exception):
    """Raised on purpose, before delivering, at the rate NOTIFY_FAILURE_RATE."""


@dataclass(frozen=True)
class Claim:
    claimed: ClaimedNotification
    message: OutgoingNotification
    recipient: Recipient
    channels: tuple[str, ...]  # still to deliver, in order
    already_delivered: frozenset[str]


def deliver_notification(
    uow: UnitOfWork, notification_id: str, settings: NotificationSettings
) -> DeliveryOutcome:
    """Deliver the notification on each of its channels and record the outcome.

    Two transactions in ``uow``: the claim, then the outcome; the provider is called between them.

    Raises DeliveryFailed when a retry is due, DeliveryAbandoned after the
    last attempt. Database errors propagate: nothing was recorded, so the
    task may simply run again.
    """
    # One metrics line per attempt: delivered (with its commit-to-delivered time), retried or dead.
    with log_context(notification_id=notification_id), metrics_batch():
        claim = _claim(uow, notification_id, settings)
        if isinstance(claim, DeliveryOutcome):
            return claim
        # The request id of the change that wrote this notification: the API's access line has it too.
        with log_context(correlation_id=claim.message.correlation_id):
            return _deliver(uow, claim, settings)


def _deliver(uow: UnitOfWork, claim: Claim, settings: NotificationSettings) -> DeliveryOutcome:
    delivered = set(claim.already_delivered)
    try:
        if random.random() < settings.failure_rate:  # noqa: S311 - a drill, not security
            raise SimulatedFailure("simulated provider failure")
        providers = providers_by_channel(settings.providers, settings.email_sender)
        for channel in claim.channels:
            if channel in providers:
                providers[channel].send(channel, claim.recipient, claim.message)
                delivered.add(channel)
    except Exception as error:
        _finish_failed_attempt(uow, claim, error, delivered, settings)
    _finish_delivered(uow, claim, delivered)
    return DeliveryOutcome.DELIVERED


def _since_commit_ms(claim: Claim) -> float:
    return (utc_now() - claim.claimed.created_at).total_seconds() * 1000


def _claim(uow: UnitOfWork, notification_id: str, settings: NotificationSettings) -> Claim | DeliveryOutcome:
    now = utc_now()
    with uow:
        claimed = uow.notifications.claim(
            notification_id, now=now, until=now + timedelta(seconds=settings.claim_timeout)
        )
        if claimed is None:
            return _why_not_claimable(uow, notification_id)
        contact = uow.patients.contact(claimed.patient_id)
        if contact is None:
            uow.notifications.mark_cancelled(claimed, now=now)
            uow.commit()
            logger.info("notification cancelled: the patient was deleted", extra={"attempt": claimed.attempt})
            return DeliveryOutcome.CANCELLED
        uow.commit()
    email, phone_e164 = contact
    reachable = channels_for(phone_e164)
    already = frozenset(c for c in claimed.delivered_channels.split(",") if c)
    return Claim(
        claimed=claimed,
        message=OutgoingNotification(
            notification_id=claimed.id,
            patient_id=claimed.patient_id,
            event=claimed.event,
            correlation_id=claimed.correlation_id,
            attempt=claimed.attempt,
        ),
        recipient=Recipient(email=email, phone_e164=phone_e164),
        # A channel the patient removed since the change is not attempted.
        channels=tuple(c for c in claimed.channels.split(",") if c in reachable and c not in already),
        already_delivered=already,
    )


def _why_not_claimable(uow: UnitOfWork, notification_id: str) -> DeliveryOutcome:
    status = uow.notifications.status_of(notification_id)
    if status is None:
        return DeliveryOutcome.NOT_FOUND
    if status == NotificationStatus.SENDING:
        return DeliveryOutcome.CLAIMED_ELSEWHERE
    return DeliveryOutcome.ALREADY_FINISHED


def _record_outcome(write: Callable[[], bool]) -> bool:
    """``write()`` (one transaction recording this attempt's outcome, conditional on its claim),
    tried again on a new connection when the connection is lost or the database cannot be reached.

    The provider has been called by then: giving up would leave the row claimed (``sending``)
    until the claim expires, and the task's own retry could not claim it back; the relay would
    then deliver it a second time. Writing again is safe: the write changes the row only while
    this attempt holds the claim, so if a lost COMMIT did commit, the next try changes nothing.
    """
    for pause in OUTCOME_WRITE_PAUSES:
        try:
            return write()
        except Exception as error:
            if not (is_dropped_connection(error) or isinstance(error, DatabaseUnavailable)):
                raise
        logger.warning("database connection lost recording a delivery attempt; trying again")
        time.sleep(pause)
    return write()


def _finish_delivered(uow: UnitOfWork, claim: Claim, delivered: set[str]) -> None:
    def mark_delivered() -> bool:
        with uow:
            recorded = uow.notifications.mark_delivered(
                claim.claimed, channels=",".join(sorted(delivered)), now=utc_now()
            )
            uow.commit()
        return recorded

    recorded = _record_outcome(mark_delivered)
    message = claim.message
    if recorded:
        logger.info("notification delivered", extra={**message.log_fields(), "channels": sorted(delivered)})
        record_delivered(_since_commit_ms(claim))
    else:
        # Our claim expired and was taken over while we were delivering.
        logger.warning("notification delivered after its claim expired", extra=message.log_fields())


def _finish_failed_attempt(
    uow: UnitOfWork, claim: Claim, error: Exception, delivered: set[str], settings: NotificationSettings
) -> NoReturn:
    message = claim.message
    reason = safe_error_text(error)
    final = message.attempt > settings.max_retries

    def mark_attempt_failed() -> bool:
        now = utc_now()
        with uow:
            recorded = uow.notifications.mark_attempt_failed(
                claim.claimed,
                final=final,
                last_error=reason,
                channels=",".join(sorted(delivered)),
                now=now,
                # If the retry message is lost, the relay steps in once its longest backoff has passed.
                next_attempt_at=now + timedelta(seconds=settings.retry_backoff_max + settings.relay_delay),
            )
            uow.commit()
        return recorded

    _record_outcome(mark_attempt_failed)
    record_delivery_failure(final=final)
    logger.info(
        "notification attempt failed", extra={**message.log_fields(), "error": reason, "final": final}
    )
    # "from None": the result backend stores the traceback, and a provider's own
    # exception text may quote the recipient's address.
    if final:
        raise DeliveryAbandoned(reason) from None
    raise DeliveryFailed(reason) from None


def retry_delay(retries: int, settings: NotificationSettings) -> float:
    """Seconds before retry number ``retries + 1``: exponential, capped, jittered, never near zero.

    Between half and all of ``retry_backoff * 2**retries`` (at most ``retry_backoff_max``).
    Celery's own full jitter can pick 0 s; its retry is then published before the
    failed attempt's RETRY state is stored, and a quick last attempt's FAILURE can
    be overwritten by that late RETRY in the result backend.
    """
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff * 2**retries)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not security


def safe_error_text(error: Exception) -> str:
    """The error's class, plus text only where we know it holds no patient data."""
    name = type(error).__name__
    if isinstance(error, SimulatedFailure | MissingAddress):
        text = f"{name}: {error}"
    else:
        # botocore's ClientError: its code ("MessageRejected") is safe, its message is not.
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        text = f"ClientError: {code}" if isinstance(code, str) else name
    return text[:LAST_ERROR_MAX_LENGTH]
