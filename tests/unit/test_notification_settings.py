"""Notification settings: safe defaults, and loud failures for values that would misbehave."""

from __future__ import annotations

import pytest

from chalicelib.config.environment import ConfigurationError
from chalicelib.notifications.delivery import retry_delay
from tests.helpers.environment import load_dev_settings


def test_defaults_follow_the_seed() -> None:
    notify = load_dev_settings({}).notifications

    assert notify.failure_rate == 0.0  # the seed's drill is off unless asked for (make run asks)
    assert notify.providers == ("log",)
    assert notify.retry_backoff_max * 2 <= notify.visibility_timeout


def test_values_are_read_from_the_environment() -> None:
    notify = load_dev_settings(
        {"NOTIFY_FAILURE_RATE": "0.25", "NOTIFY_PROVIDER": "ses, sns", "NOTIFY_MAX_RETRIES": "2"}
    ).notifications

    assert (notify.failure_rate, notify.providers, notify.max_retries) == (0.25, ("ses", "sns"), 2)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOTIFY_FAILURE_RATE": "1.5"}, "NOTIFY_FAILURE_RATE"),
        ({"NOTIFY_FAILURE_RATE": "often"}, "NOTIFY_FAILURE_RATE must be a number"),
        ({"NOTIFY_PROVIDER": "pigeon"}, "NOTIFY_PROVIDER"),
        ({"NOTIFY_MAX_RETRIES": "-1"}, "NOTIFY_MAX_RETRIES"),
        ({"NOTIFY_RETRY_BACKOFF_MAX": "2000"}, "half of REDIS_VISIBILITY_TIMEOUT"),
    ],
)
def test_unsafe_values_refuse_to_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_dev_settings(env)


def test_retry_delays_grow_exponentially_with_jitter_up_to_the_cap_and_never_near_zero() -> None:
    notify = load_dev_settings({"NOTIFY_RETRY_BACKOFF": "2", "NOTIFY_RETRY_BACKOFF_MAX": "30"}).notifications

    delays = {retries: [retry_delay(retries, notify) for _ in range(200)] for retries in range(6)}

    for retries, ceiling in ((0, 2), (1, 4), (2, 8), (3, 16), (4, 30), (5, 30)):
        assert ceiling / 2 <= min(delays[retries]) and max(delays[retries]) <= ceiling
        assert len(set(delays[retries])) > 100  # jittered, so retries of a burst spread out
