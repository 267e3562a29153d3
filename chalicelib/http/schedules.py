"""Scheduled functions: ``@scheduled`` on a handler in ``functions/``, registered by app.py.

Each becomes a Lambda function of its own that EventBridge invokes at its rate
(``app.schedule``); ``local_server.schedules`` fires the same handlers
on the local server. Chalice evaluates the schedule when app.py is imported,
so the interval comes from ``chalicelib.config.schedules`` (plain environment,
no secrets). EventBridge schedules whole minutes: an interval that is not is
accepted locally (a ``SECONDS`` rate, which only the local server reads) and
refused by the Chalice commands that deploy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from chalice.app import Chalice, Rate

from chalicelib.config.environment import ConfigurationError
from chalicelib.http.startup import deploying_with_chalice_cli

# Not an EventBridge unit: a sub-minute interval, for the local server only.
SECONDS = "SECONDS"
UNIT_SECONDS = {Rate.DAYS: 86400, Rate.HOURS: 3600, Rate.MINUTES: 60, SECONDS: 1}
# What the events of the scheduled functions carry where no AWS account is involved (local, tests).
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"

Handler = TypeVar("Handler", bound=Callable[..., Any])


# A NamedTuple, not a dataclass: every cold start builds this class (see ScheduleSettings).
class Schedule(NamedTuple):
    # Read when the handler is registered (app.py's import), not when the module is imported.
    interval_seconds: Callable[[], int]
    description: str


def scheduled(interval_seconds: Callable[[], int], description: str) -> Callable[[Handler], Handler]:
    """Declare ``handler`` a scheduled function run every ``interval_seconds()`` seconds."""

    def attach(handler: Handler) -> Handler:
        handler.schedule = Schedule(interval_seconds, description)  # type: ignore[attr-defined]
        return handler

    return attach


def register_schedule(app: Chalice, handler: Callable[..., Any]) -> Any:
    """Register ``handler`` (declared with ``@scheduled``) with ``app``; returns the function Lambda runs.

    app.py must keep it under the handler's own name: Lambda runs ``app.<name>``.
    """
    declared = getattr(handler, "schedule", None)
    if not isinstance(declared, Schedule):
        raise ValueError(f"{handler.__name__} is not declared with @scheduled")
    return app.schedule(rate_every(declared.interval_seconds()), description=declared.description)(handler)


def rate_every(seconds: int) -> Rate:
    """The rate of ``seconds``, in the largest unit that divides it. Raises ConfigurationError."""
    for unit, size in UNIT_SECONDS.items():
        if seconds % size == 0 and (unit != SECONDS or not deploying_with_chalice_cli()):
            return Rate(seconds // size, unit)
    raise ConfigurationError(f"EventBridge schedules whole minutes: {seconds} seconds is not one")


def interval_of(rate: Rate) -> int:
    """Seconds between two runs at ``rate``."""
    return int(rate.value) * UNIT_SECONDS[rate.unit]


def scheduled_event(rule_name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target ("Scheduled Event", source aws.events)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }
