"""Reading settings from the environment: the one error a bad setting raises, and number parsing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar


class ConfigurationError(RuntimeError):
    """The environment describes a deployment that must not start."""


# The handler Lambda runs for the API's function (app.py's ``app``), as Lambda names it in _HANDLER.
API_HANDLER = "app.app"


def serves_requests(env: Mapping[str, str]) -> bool:
    """False in a scheduled function: a Lambda function whose handler is not the API's.

    (The authorizer's function reads settings of its own, ``load_auth_settings``.)
    """
    return env.get("_HANDLER", API_HANDLER) == API_HANDLER


def checks_tokens(env: Mapping[str, str]) -> bool:
    """True where this process checks bearer tokens itself: the API served in one process (chalice
    local, the test client). False in a scheduled function, the worker, and the API's own Lambda
    function (Lambda names its handler in _HANDLER): API Gateway ran the authorizer's function, whose
    role alone may read the token secret, before it."""
    return serves_requests(env) and env.get("_HANDLER") != API_HANDLER


# The Celery worker (``local_worker``), named as Lambda names a function's handler: it serves no request,
# so it reads no token and needs no idempotency key in any stage (``chalicelib.bootstrap.run_as_worker``).
WORKER_HANDLER = "local_worker"

# The relay's function (app.py's ``relay_notifications``): like the API's, it hands notifications off.
RELAY_HANDLER = "app.relay_notifications"


def hands_off_notifications(env: Mapping[str, str]) -> bool:
    """True where notifications go to the broker: the API's function and the relay's (not the purge's)."""
    return env.get("_HANDLER", API_HANDLER) in (API_HANDLER, RELAY_HANDLER)


Number = TypeVar("Number", int, float)


def number_setting(
    env: Mapping[str, str],
    name: str,
    default: Number,
    kind: type[Number],
    *,
    minimum: float = 0,
    maximum: float | None = None,
) -> Number:
    """``env[name]`` as an ``int`` or ``float`` within bounds, ``default`` when unset or blank."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    upper = "" if maximum is None else f" and at most {maximum}"
    wanted = f"{name} must be {'a whole number' if kind is int else 'a number'} of at least {minimum}{upper}"
    text = raw.strip()
    # int() would also take other scripts' digits and numbers of any length.
    if not text.isascii() or len(text) > 18:
        raise ConfigurationError(wanted)
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(wanted) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigurationError(wanted)
    return value
