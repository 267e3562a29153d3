"""Notification settings: broker timeouts, retries, the relay, the delivery providers (NOTIFY_*, REDIS_*).

How often the relay runs is a schedule: ``chalicelib.config.schedules``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config.environment import ConfigurationError, number_setting

NOTIFICATION_PROVIDERS = ("log", "ses", "sns")


@dataclass(frozen=True)
class NotificationSettings:
    """How notifications travel: broker timeouts, retries, the relay, the delivery providers."""

    # Chance that a delivery attempt fails on purpose before delivering (the seed's resilience drill).
    # The seed's drill (a share of attempts failing on purpose): off unless asked for, as `make run` does.
    failure_rate: float = 0.0
    providers: tuple[str, ...] = ("log",)
    max_retries: int = 5
    # Seconds; retry n+1 waits between half and all of retry_backoff * 2**n (capped at retry_backoff_max).
    retry_backoff: int = 2
    retry_backoff_max: int = 300
    # A notification still pending or queued this long after its last hand-off is handed off again.
    relay_delay: int = 60
    # How long a worker's claim on a notification lasts; a claim older than this was abandoned.
    claim_timeout: int = 300
    # Redis redelivers a message not acknowledged within this many seconds (acks_late).
    visibility_timeout: int = 3600
    # Bounds the hand-off in the request path when Redis is unreachable.
    broker_connect_timeout: float = 1.0
    email_sender: str = "notifications@example.com"


def load_notification_settings(env: Mapping[str, str]) -> NotificationSettings:
    """The notification settings ``env`` describes. Raises ConfigurationError."""
    defaults = NotificationSettings()
    providers = tuple(p.strip() for p in env.get("NOTIFY_PROVIDER", "log").split(",") if p.strip())
    unknown = sorted(set(providers) - set(NOTIFICATION_PROVIDERS))
    if unknown or not providers:
        raise ConfigurationError(f"NOTIFY_PROVIDER must list some of {', '.join(NOTIFICATION_PROVIDERS)}")
    settings = NotificationSettings(
        failure_rate=number_setting(env, "NOTIFY_FAILURE_RATE", defaults.failure_rate, float, maximum=1.0),
        providers=providers,
        max_retries=number_setting(env, "NOTIFY_MAX_RETRIES", defaults.max_retries, int),
        retry_backoff=number_setting(env, "NOTIFY_RETRY_BACKOFF", defaults.retry_backoff, int, minimum=1),
        retry_backoff_max=number_setting(
            env, "NOTIFY_RETRY_BACKOFF_MAX", defaults.retry_backoff_max, int, minimum=1
        ),
        relay_delay=number_setting(env, "NOTIFY_RELAY_DELAY", defaults.relay_delay, int, minimum=1),
        claim_timeout=number_setting(env, "NOTIFY_CLAIM_TIMEOUT", defaults.claim_timeout, int, minimum=1),
        visibility_timeout=number_setting(
            env, "REDIS_VISIBILITY_TIMEOUT", defaults.visibility_timeout, int, minimum=1
        ),
        broker_connect_timeout=number_setting(
            env, "REDIS_CONNECT_TIMEOUT", defaults.broker_connect_timeout, float, minimum=0.01
        ),
        email_sender=env.get("NOTIFY_EMAIL_SENDER", defaults.email_sender),
    )
    # A retry scheduled past the visibility timeout is redelivered by Redis while it still waits.
    if settings.retry_backoff_max * 2 > settings.visibility_timeout:
        raise ConfigurationError("NOTIFY_RETRY_BACKOFF_MAX must be at most half of REDIS_VISIBILITY_TIMEOUT")
    return settings
