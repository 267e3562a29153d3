"""The relay, a scheduled function: hands off again the notifications whose hand-off is overdue."""

from typing import Any

from chalice.app import CloudWatchEvent

from chalicelib import bootstrap
from chalicelib.config.schedules import get_schedule_settings
from chalicelib.http.schedules import scheduled
from chalicelib.observability.metrics import record_relay_run
from chalicelib.service_layer.unit_of_work import UnitOfWork


@scheduled(
    lambda: get_schedule_settings().relay_interval,
    "Hands off again notifications left pending or lost with Redis (NOTIFY_RELAY_INTERVAL)",
)
def relay_notifications(event: CloudWatchEvent) -> dict[str, Any]:
    # Imported here: only this scheduled function relays, and app.py imports every handler.
    from chalicelib.notifications.relay import relay_notifications as relay

    run = relay(UnitOfWork(), relay_delay=bootstrap.settings().notifications.relay_delay)
    record_relay_run(run.handed_off, run.oldest_pending_age_seconds)
    return {"handed_off": run.handed_off, "oldest_pending_age_seconds": run.oldest_pending_age_seconds}
