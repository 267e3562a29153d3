"""The processes a process started, and ties that make them stop together (Linux; elsewhere a no-op).

Used by ``scripts.run_stack`` (``make run``) so that no process of the stack
outlives it, and by its tests to check that none did.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (every thread's), from /proc; [] where there is no /proc."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children before their own children."""
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    except IndexError:
        return True
    return state not in ("Z", "X")


def command_name(pid: int) -> str:
    """The command name of ``pid`` (/proc's ``comm``: "make", "python3"); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def caught_signals(pid: int) -> frozenset[int]:
    """The signals ``pid`` has a handler for (its ``SigCgt`` mask in /proc); empty where unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return frozenset(signum for signum in range(1, 65) if mask & 1 << (signum - 1))
    return frozenset()


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def signal_me_when_my_parent_dies(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel for ``signum`` when the parent process dies (Linux; callers also poll getppid)."""
    _prctl(PR_SET_PDEATHSIG, signum)


def adopt_orphaned_descendants() -> None:
    """Become the parent of descendants orphaned by a dying child, so they can still be stopped (Linux)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def kill_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
