"""The composition root's settings: the environment is read here, once per process, and each part
is handed the slice it needs.

Only the edge asks this module (app.py, ``functions/``, ``chalicelib/http``, the worker's Celery
app, the local server, the commands), and passes values on: services, storage and the kernel take
them in their signatures, and the adapters (storage's engine, the broker's client) get their slice
from ``chalicelib.config.provided``, whose sources are set here. ``tests/unit/test_architecture.py``
holds that line.
"""

from __future__ import annotations

import os

from chalicelib.config import provided
from chalicelib.config.environment import WORKER_HANDLER
from chalicelib.config.process_cache import forget_process_caches, process_cache
from chalicelib.config.settings import (
    AUTHORIZER_HANDLER,
    AuthSettings,
    PatientSettings,
    Settings,
    load_auth_settings,
    load_settings,
)


class _Process:
    """What this process runs when Lambda does not say (in ``_HANDLER``): the worker says so."""

    handler: str | None = None


def run_as_worker() -> None:
    """This process is the Celery worker: its settings, read after this, ask for no token secret and
    no idempotency key (it serves no request), in every stage. ``local_worker`` calls it first."""
    _Process.handler = WORKER_HANDLER


@process_cache()
def settings() -> Settings:
    """The process's settings, read once (in Lambda: once per cold start, secrets included)."""
    if _Process.handler is None:
        return load_settings(os.environ)
    return load_settings({**os.environ, "_HANDLER": _Process.handler})


@process_cache()
def patient_settings() -> PatientSettings:
    """What the patient service is handed: its values, the laptop's key read or made once."""
    current = settings()
    return PatientSettings(
        current.phone_default_region, current.notifications.relay_delay, current.idempotency_key()
    )


def auth_settings() -> AuthSettings:
    """The authorizer's settings. In the authorizer's own function (Lambda's ``_HANDLER``), read alone:
    its cold start reads no database or Redis secret, which its role may not read. Elsewhere, those of
    ``settings()``."""
    if os.environ.get("_HANDLER") == AUTHORIZER_HANDLER:
        return _authorizer_function_settings()
    return settings().auth


@process_cache()
def _authorizer_function_settings() -> AuthSettings:
    return load_auth_settings(os.environ)


def reset_for_tests() -> None:
    """Forget every setting read and everything built from them (engines, clients): the next use
    reads the environment again. For tests that change it; a deployed process never does."""
    forget_process_caches()


# The adapters' slices: read from these settings when an adapter is first used, never before.
provided.DATABASE.provide(lambda: settings().database)
provided.BROKER.provide(lambda: settings().broker)
