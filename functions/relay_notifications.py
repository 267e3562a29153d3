"""The relay, a scheduled function: hands off again the notifications whose hand-off is overdue, and
settles the rate limiter's refusal counts of ended minutes into the audit trail (both wait in Redis
for a process that runs every minute)."""

import logging
from typing import Any

from chalice.app import CloudWatchEvent

from chalicelib import bootstrap
from chalicelib.config.schedules import get_schedule_settings
from chalicelib.config.settings import RateLimitSettings
from chalicelib.http.schedules import scheduled
from chalicelib.observability.metrics import record_relay_run
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import utc_now

logger = logging.getLogger("telehealth.rate_limit")


@scheduled(
    lambda: get_schedule_settings().relay_interval,
    "Hands off again notifications left pending or lost with Redis (NOTIFY_RELAY_INTERVAL)",
)
def relay_notifications(event: CloudWatchEvent) -> dict[str, Any]:
    # Imported here: only this scheduled function relays, and app.py imports every handler.
    from chalicelib.notifications.relay import relay_notifications as relay

    settings = bootstrap.settings()
    run = relay(UnitOfWork(), relay_delay=settings.notifications.relay_delay)
    record_relay_run(
        run.handed_off,
        run.oldest_pending_age_seconds,
        oldest_queued_age_seconds=run.oldest_queued_age_seconds,
        queue_length=run.queue_length,
    )
    if settings.redis_url:  # the rate limiter's refusals of ended minutes, counted in Redis, into the trail
        settle_refusals(settings.redis_url, settings.rate_limit)
    return {
        "handed_off": run.handed_off,
        "oldest_pending_age_seconds": run.oldest_pending_age_seconds,
        "oldest_queued_age_seconds": run.oldest_queued_age_seconds,
        "queue_length": run.queue_length,
    }


def settle_refusals(redis_url: str, limit: RateLimitSettings) -> None:
    from chalicelib.audit.service import settle_refusal_counts

    try:
        settled = settle_refusal_counts(UnitOfWork(), redis_url, limit, utc_now())
    except Exception as error:
        # The counters stay in Redis for the next run; the notifications' relay is done regardless.
        logger.warning("refusal counts not settled (%s)", type(error).__name__)
        return
    if settled:
        logger.info("refusal counts settled into the audit trail", extra={"count": settled})
