"""The worker's Celery app: ``celery -A local_worker worker``.

No beat: the relay is a scheduled function of the app (``functions/relay_notifications.py``),
run by EventBridge when deployed and by the local server under ``make run``.

Its settings come from ``chalicelib`` (the same ones the API's client uses),
so both ends agree on the broker, the result backend and the visibility timeout.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from chalicelib import bootstrap
from chalicelib.config.environment import ConfigurationError
from chalicelib.config.logs import get_log_settings
from chalicelib.notifications.broker import celery_config
from chalicelib.observability.structured_logging import configure_logging
from chalicelib.storage.database import reset_engine
from local_worker.redis_reconnect import keep_worker_alive_on_broker_loss

keep_worker_alive_on_broker_loss()
# Before any setting is read: the worker serves no request, so a prod worker needs no token secret.
bootstrap.run_as_worker()


@setup_logging.connect
def log_json_lines(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery's own lines and ours, as the API's: JSON on stdout (``--loglevel`` wins over LOG_LEVEL)."""
    log_settings = get_log_settings()
    configure_logging(loglevel or log_settings.level, console=log_settings.console)


@worker_process_init.connect
def forget_inherited_engine(**_: Any) -> None:
    """A prefork child must not share its parent's database connections: it opens its own."""
    reset_engine(close_connections=False)


settings = bootstrap.settings()
if not settings.redis_url:
    raise ConfigurationError("the worker needs REDIS_URL (broker and result backend)")

app = Celery("local_worker", include=["local_worker.tasks"])
app.conf.update(celery_config(settings.broker))
app.conf.update(
    # Prefetch a few per process: acks_late keeps prefetched messages safe in Redis until done.
    worker_prefetch_multiplier=8,
)
