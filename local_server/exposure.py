"""No local server on the network while it accepts the published development token.

``secret-token-123`` is in the README: a server on ``0.0.0.0`` that accepts it gives anyone on
the network every patient record. ``make run`` (``API_HOST``) and the local servers themselves
(``--host``) refuse to start so, with one line naming both ways out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from chalicelib.config.settings import AuthSettings
from chalicelib.config.tokens import is_development_token

CHALICE_LOCAL_DEFAULT_HOST = "127.0.0.1"


def is_loopback_host(host: str) -> bool:
    """Whether a host to listen on is this machine only: localhost, 127.0.0.0/8, ::1."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, auth: AuthSettings) -> str | None:
    """Why serving on ``host`` with ``auth`` is refused, in one line; None when it is not."""
    if is_loopback_host(host) or not any(is_development_token(digest) for digest in auth.token_digests):
        return None
    return (
        f"refusing to serve on {host or 'every address'}: API_HOST (--host) reaches the network while the"
        " published development token is accepted; set API_TOKENS (or API_TOKEN_SHA256) to tokens of"
        " your own, or keep API_HOST on 127.0.0.1"
    )


def chalice_local_host(argv: Sequence[str]) -> str:
    """The ``--host`` of a ``chalice local`` (or ``scripts.local_api``) command line; chalice's default."""
    arguments = iter(argv)
    host = CHALICE_LOCAL_DEFAULT_HOST
    for argument in arguments:
        if argument == "--host":
            host = next(arguments, host)
        elif argument.startswith("--host="):
            host = argument.removeprefix("--host=")
    return host


def refuse_exposed_development_token(host: str, auth: AuthSettings) -> None:
    """End this server's process (and autoreload's parent) with the problem's line, if there is one.

    Called where the app is loaded, which under autoreload is a thread of the child process: an
    exception there would leave the child serving nothing, and chalice's parent exits 0 when its
    child ends, so the parent is stopped too.
    """
    problem = exposure_problem(host, auth)
    if problem is None:
        return
    print(problem, file=sys.stderr, flush=True)
    if _started_by_autoreload():
        with contextlib.suppress(OSError):
            os.kill(os.getppid(), signal.SIGTERM)
    os._exit(1)


def _started_by_autoreload() -> bool:
    # Chalice's reloader starts its child with its own arguments and CHALICE_WORKER set (the
    # interpreter, first, may be named another way).
    if os.environ.get("CHALICE_WORKER") is None:
        return False
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
        return parent[1:] == Path("/proc/self/cmdline").read_bytes().split(b"\0")[1:]
    except OSError:
        return False
