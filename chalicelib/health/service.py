"""Health: can this process reach its database (with its schema up to date) and Redis, and how many
notifications wait or failed.

The reachability answers anyone (``GET /health`` has no token), so it must cost nothing to ask:
each process checks at most once per ``CHECK_SECONDS`` and answers everyone in between from that
check, with one Redis client kept for it. The notification counts are for operators (a scope),
read afresh on each call. No patient data: only reachability words and counts.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config.process_cache import on_forget, process_cache
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.storage.models import NotificationStatus
from chalicelib.storage.schema import is_missing_schema, schema_is_behind

logger = logging.getLogger("telehealth.health")
REDIS_TIMEOUT_SECONDS = 0.5
# How long one process answers from its last check: a burst of anonymous calls costs one database
# round trip and one Redis ping per process per period.
CHECK_SECONDS = 5.0
UP, UNREACHABLE, NOT_CONFIGURED = "ok", "unreachable", "not_configured"
# The database answers, but lacks our tables or the newest migration: `make migrate`.
NOT_MIGRATED = "not_migrated"


@dataclass(frozen=True)
class Health:
    database: str
    redis: str

    @property
    def healthy(self) -> bool:
        """The API serves patients when its database answers; Redis only delays notifications."""
        return self.database == UP


@dataclass(frozen=True)
class NotificationCounts:
    pending: int
    failed: int


@dataclass
class _LastCheck:
    health: Health | None = None
    checked_at: float = 0.0
    redis_url: str | None = None


_last = _LastCheck()
_checking = threading.Lock()


def check_health(redis_url: str | None) -> Health:
    """Reachability of the database and of Redis at ``redis_url``, as checked at most
    ``CHECK_SECONDS`` ago by this process; never raises. One caller checks while the others wait."""
    with _checking:
        fresh = time.monotonic() - _last.checked_at < CHECK_SECONDS
        if _last.health is None or not fresh or _last.redis_url != redis_url:
            _last.health = Health(_database(), _redis(redis_url))
            _last.checked_at, _last.redis_url = time.monotonic(), redis_url
        return _last.health


def count_notifications(reads: ReadTransaction) -> NotificationCounts:
    """How many notifications wait for a hand-off (pending) and how many gave up (failed)."""
    with reads:
        pending = reads.notifications.count_with_status(NotificationStatus.PENDING)
        failed = reads.notifications.count_with_status(NotificationStatus.FAILED)
    return NotificationCounts(pending, failed)


def forget_last_check() -> None:
    _last.health, _last.checked_at, _last.redis_url = None, 0.0, None


def _database() -> str:
    try:
        behind = schema_is_behind()  # one round trip: the database answers, with our schema or not
    except Exception as error:
        if is_missing_schema(error):
            logger.warning("health: database schema not migrated (%s)", type(error).__name__)
            return NOT_MIGRATED
        logger.warning("health: database unreachable (%s)", type(error).__name__)
        return UNREACHABLE
    if behind:
        logger.warning("health: database schema behind the newest migration")
        return NOT_MIGRATED
    return UP


def _redis(url: str | None) -> str:
    if not url:
        return NOT_CONFIGURED
    try:
        _redis_client(url).ping()
        return UP
    except Exception as error:
        logger.warning("health: redis unreachable (%s)", type(error).__name__)
        return UNREACHABLE


@process_cache(maxsize=2)
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )


on_forget(forget_last_check)
