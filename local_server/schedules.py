"""The app's scheduled functions on the local server, which ``chalice local`` does not run (aws/chalice#979).

Under ``chalice local`` and ``scripts.local_api`` (``make run``), a background
thread per scheduled function calls it with the event EventBridge would send,
every interval of its ``Rate``, one run after the other, the first one interval
after the start (as a new EventBridge rule does). A ``Cron`` is not timed
here: it is named in a warning at start, and runs only when asked.
``POST /__scheduled/<name>`` runs one now and answers what it returned
(``LocalRequestHandling.do_POST``); only the local server serves it, never
the app, so it exists in no deployment.

It takes no token, so it answers only what a developer's own command sends
(``curl -H 'X-Telehealth-Trigger: 1' -X POST ...``): a caller on this machine,
naming this machine in ``Host``, with the custom header and without ``Origin``.
A web page can send none of those: its cross-site "simple" POST carries
``Origin``, a custom header needs a CORS preflight nobody answers, and a DNS
rebinding page reaches 127.0.0.1 under its own name in ``Host``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice, Rate, ScheduledEventConfig

from chalicelib.http.errors import INTERNAL_ERROR_CODE
from chalicelib.http.schedules import interval_of, scheduled_event
from local_server.answers import local_error_body

TRIGGER_PREFIX = "/__scheduled/"
TRIGGER_HEADER = "X-Telehealth-Trigger"
# The trigger's own refusals, besides the internal_error of a failing function.
TRIGGER_NOT_LOCAL = "trigger_not_local"
TRIGGER_HEADER_MISSING = "trigger_header_missing"
SCHEDULED_FUNCTION_NOT_FOUND = "scheduled_function_not_found"
TRIGGER_CODES = (TRIGGER_NOT_LOCAL, TRIGGER_HEADER_MISSING, SCHEDULED_FUNCTION_NOT_FOUND)
# A Host header: a name or IPv4 address, or an IPv6 address in brackets, then an optional port.
HOST_HEADER = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::[0-9]{1,5})?")
logger = logging.getLogger("telehealth.schedules")


@dataclass(frozen=True)
class LocalSchedule:
    name: str
    rule_name: str  # as chalice names the deployed EventBridge rule
    handler: Callable[[dict[str, Any], Any], Any]
    interval_seconds: int | None  # None: a Cron, run only on request

    def run(self) -> Any:
        """One run with a scheduled event, as Lambda would make it. Raises what the handler raises."""
        from chalice.local import LambdaContext

        context = LambdaContext(self.rule_name, memory_size=512, max_runtime_ms=900_000)
        started = time.perf_counter()
        try:
            result = self.handler(scheduled_event(self.rule_name), context)
        except Exception as error:
            # The class only: a database error's text may quote the statement's parameters.
            logger.error(
                "scheduled function failed", extra={"function": self.name, "error": type(error).__name__}
            )
            raise
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info("scheduled function ran", extra={"function": self.name, "duration_ms": duration_ms})
        return result


_schedules: dict[str, LocalSchedule] = {}


def schedules_of(app: Chalice, stage: str) -> dict[str, LocalSchedule]:
    """The app's scheduled functions, by name."""
    found = {}
    for source in app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        expression = source.schedule_expression
        interval = interval_of(expression) if isinstance(expression, Rate) else None
        rule_name = f"{app.app_name}-{stage}-{source.name}"
        found[source.name] = LocalSchedule(source.name, rule_name, app.handler_map[source.name], interval)
    return found


def run_schedules_locally(app: Chalice, stage: str) -> None:
    """Time each scheduled function of ``app`` and offer them to the trigger route."""
    _schedules.clear()
    _schedules.update(schedules_of(app, stage))
    for schedule in _schedules.values():
        if schedule.interval_seconds is None:
            logger.warning(
                "a Cron schedule is not timed locally; run it with POST %s%s",
                TRIGGER_PREFIX,
                schedule.name,
                extra={"function": schedule.name},
            )
            continue
        threading.Thread(
            target=_run_every, args=(schedule,), name=f"schedule-{schedule.name}", daemon=True
        ).start()


def _run_every(schedule: LocalSchedule) -> None:
    assert schedule.interval_seconds is not None
    next_run = time.monotonic() + schedule.interval_seconds
    while True:
        time.sleep(max(0.0, next_run - time.monotonic()))
        # A failure is logged by run(); the next run comes all the same, as in EventBridge.
        with contextlib.suppress(Exception):
            schedule.run()
        # A run longer than the interval delays the next one rather than overlapping it.
        next_run = max(next_run + schedule.interval_seconds, time.monotonic())


@dataclass(frozen=True)
class TriggerCaller:
    """Who sent a trigger request: its peer address and the headers that tell a page from a developer."""

    address: str
    host: str | None  # the Host header; None when absent or repeated
    origin_sent: bool
    trigger_header: str | None


def trigger(path: str, caller: TriggerCaller) -> tuple[int, dict[str, Any]]:
    """Answer ``POST /__scheduled/<name>``: the status and JSON body (our error shape when refused).

    The route carries no token, so only a developer's own command may fire a function: with
    ``API_HOST=0.0.0.0`` the API is reachable from the network, the trigger still is not, nor from
    a web page in the developer's browser.
    """
    refusal = _refusal(caller)
    if refusal is not None:
        return 403, refusal
    name = path.split("?", 1)[0].removeprefix(TRIGGER_PREFIX)
    schedule = _schedules.get(name)
    if schedule is None:
        known = ", ".join(sorted(_schedules)) or "none"
        message = f"No scheduled function by that name; the app has: {known}"
        return 404, local_error_body(SCHEDULED_FUNCTION_NOT_FOUND, message)
    try:
        result = schedule.run()
    except Exception:
        message = "The scheduled function failed; its log line names the error"
        return 500, local_error_body(INTERNAL_ERROR_CODE, message)
    return 200, {"function": schedule.name, "result": result}


def _refusal(caller: TriggerCaller) -> dict[str, Any] | None:
    if not _is_loopback(caller.address):
        return local_error_body(TRIGGER_NOT_LOCAL, "Scheduled functions can be fired only from this machine")
    if caller.host is None or not is_loopback_name(caller.host):
        message = "Scheduled functions can be fired only at localhost, 127.0.0.1 or [::1] (the Host header)"
        return local_error_body(TRIGGER_NOT_LOCAL, message)
    if caller.origin_sent:
        message = "Scheduled functions cannot be fired from a web page (the request carries Origin)"
        return local_error_body(TRIGGER_NOT_LOCAL, message)
    if (caller.trigger_header or "").strip() != "1":
        message = f"Send {TRIGGER_HEADER}: 1 to fire a scheduled function"
        return local_error_body(TRIGGER_HEADER_MISSING, message)
    return None


def is_loopback_name(host_header: str) -> bool:
    """Whether a Host header names this machine: localhost, 127.0.0.0/8 or [::1], with or without a port."""
    found = HOST_HEADER.fullmatch(host_header.strip())
    if found is None:
        return False
    bracketed = found["name"].startswith("[")
    name = found["name"].strip("[]")
    if name.lower() == "localhost":
        return True
    # An IPv6 address only in brackets (RFC 3986), an IPv4 one never.
    return bracketed == (":" in name) and _is_loopback(name)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
