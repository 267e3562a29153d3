"""What app.py does once at import, depending on who imports it: Lambda, ``chalice local``, or another
command of Chalice's CLI.

Chalice's CLI is the edge's business: configuration (``chalicelib.config``) knows nothing of it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import PurePath

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


def started_as_chalice_local() -> bool:
    """True in a process started as plain ``chalice local``, in whatever thread loads the app.

    Its default autoreload loads the app in a server thread of a child process, where
    click's context (per thread) is empty; the child is started with the parent's
    command line, which names the command in both. ``python -m scripts.local_api``
    wires its server itself (``local_server``): its command line is not chalice's.
    """
    return os.environ.get("AWS_CHALICE_CLI_MODE") == "true" and chalice_command_in(sys.argv) == "local"


def chalice_command_in(argv: Sequence[str]) -> str | None:
    """The command of a ``chalice [--project-dir DIR] [--debug] <command> ...`` command line, else None."""
    if not argv or PurePath(argv[0]).name != "chalice":
        return None
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "--project-dir":  # the group's one option that takes a value
            next(arguments, None)
        elif not argument.startswith("-"):
            return argument
    return None


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
