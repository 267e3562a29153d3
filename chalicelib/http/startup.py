"""What app.py does once at import, depending on who imports it: Lambda, ``chalice local``, or another
command of Chalice's CLI.

Chalice's CLI is the edge's business: configuration (``chalicelib.config``) knows nothing of it.
"""

from __future__ import annotations

import os

from chalicelib import bootstrap
from chalicelib.config.settings import AUTHORIZER_HANDLER

# Chalice CLI commands that import app.py to serve it (others read its routes).
SERVING_COMMANDS = frozenset({"local"})


def check_settings_at_startup() -> None:
    """Fail a cold start with unsafe settings before any request is served.

    Chalice's CLI also imports app.py for commands that only read its routes
    (``package``, ``deploy``, ``delete``): those must neither fetch production
    secrets from AWS nor need them, so under them the check is left to the
    deployed functions' cold start. ``chalice local`` serves, and checks.
    """
    command = _chalice_cli_command()
    if command is None or command in SERVING_COMMANDS:
        # The authorizer's function checks what it reads: the token settings (chalicelib.bootstrap).
        if os.environ.get("_HANDLER") == AUTHORIZER_HANDLER:
            bootstrap.auth_settings()
        else:
            bootstrap.settings()


def serving_with_chalice_local() -> bool:
    """True while ``chalice local`` (or ``python -m scripts.local_api``) loads the app to serve it."""
    return _chalice_cli_command() in SERVING_COMMANDS


def deploying_with_chalice_cli() -> bool:
    """True while a Chalice command other than ``local`` (``package``, ``deploy``) reads the app."""
    command = _chalice_cli_command()
    return command is not None and command not in SERVING_COMMANDS


def _chalice_cli_command() -> str | None:
    if os.environ.get("AWS_CHALICE_CLI_MODE") != "true":  # set by chalice's CLI, never in Lambda
        return None
    import click  # loaded already: chalice's CLI is built on it

    context = click.get_current_context(silent=True)
    return context.command.name if context is not None else None
