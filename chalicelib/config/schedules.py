"""How often the scheduled functions run (NOTIFY_RELAY_INTERVAL, RETENTION_PURGE_INTERVAL), in seconds.

Read apart from ``Settings``, from the plain environment: Chalice evaluates a
schedule when app.py is imported, also by ``chalice package``, which must
neither read AWS secrets nor need them. EventBridge schedules whole minutes;
a shorter interval is for the local server only (``chalicelib.http.schedules``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from chalicelib.config.environment import number_setting


# A NamedTuple, not a dataclass: every cold start builds this class, and a frozen dataclass costs ~10x more.
class ScheduleSettings(NamedTuple):
    # The relay: hands off again notifications whose hand-off is overdue (NOTIFY_RELAY_DELAY).
    relay_interval: int = 60
    # The retention purge: idempotency keys past their 24 hours.
    purge_interval: int = 3600


def load_schedule_settings(env: Mapping[str, str]) -> ScheduleSettings:
    """The intervals ``env`` sets. Raises ConfigurationError."""
    defaults = ScheduleSettings()
    return ScheduleSettings(
        relay_interval=number_setting(env, "NOTIFY_RELAY_INTERVAL", defaults.relay_interval, int, minimum=1),
        purge_interval=number_setting(
            env, "RETENTION_PURGE_INTERVAL", defaults.purge_interval, int, minimum=1
        ),
    )


def get_schedule_settings() -> ScheduleSettings:
    return load_schedule_settings(os.environ)
