"""Health: can this process reach its database (with its schema up to date) and Redis, and how many
notifications wait or failed.

No patient data: only reachability words and counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.storage.models import NotificationStatus
from chalicelib.storage.schema import is_missing_schema, schema_is_behind

logger = logging.getLogger("telehealth.health")
REDIS_TIMEOUT_SECONDS = 0.5
UP, UNREACHABLE, NOT_CONFIGURED = "ok", "unreachable", "not_configured"
# The database answers, but lacks our tables or the newest migration: `make migrate`.
NOT_MIGRATED = "not_migrated"


@dataclass(frozen=True)
class Health:
    database: str
    redis: str
    pending_notifications: int | None
    failed_notifications: int | None

    @property
    def healthy(self) -> bool:
        """The API serves patients when its database answers; Redis only delays notifications."""
        return self.database == UP


def check_health(reads: ReadTransaction, redis_url: str | None) -> Health:
    """Reachability of the database (through ``reads``) and of Redis at ``redis_url``; never raises."""
    database, pending, failed = _database(reads)
    return Health(database, _redis(redis_url), pending, failed)


def _database(reads: ReadTransaction) -> tuple[str, int | None, int | None]:
    try:
        with reads:
            pending = reads.notifications.count_with_status(NotificationStatus.PENDING)
            failed = reads.notifications.count_with_status(NotificationStatus.FAILED)
        behind = schema_is_behind()
    except Exception as error:
        if is_missing_schema(error):
            logger.warning("health: database schema not migrated (%s)", type(error).__name__)
            return NOT_MIGRATED, None, None
        logger.warning("health: database unreachable (%s)", type(error).__name__)
        return UNREACHABLE, None, None
    if behind:
        logger.warning("health: database schema behind the newest migration")
        return NOT_MIGRATED, pending, failed
    return UP, pending, failed


def _redis(url: str | None) -> str:
    if not url:
        return NOT_CONFIGURED
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return UP
    except Exception as error:
        logger.warning("health: redis unreachable (%s)", type(error).__name__)
        return UNREACHABLE
    finally:
        client.close()
