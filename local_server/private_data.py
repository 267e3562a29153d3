"""The local data directory (``TELEHEALTH_DATA_DIR``, ``.data/``) readable by its developer only.

It holds patient records (the development SQLite file and its ``-wal``/``-shm``), the embedded
Redis's password (``redis-url``) and, with ``AWS=emulated``, an API token. Created under the
default umask it was world-readable on a shared machine. The process that creates files there
(``make run``'s stack and its children, a local server migrating the development database) runs
under umask 077, and a directory or file already there gets its mode fixed at start.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def keep_private(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) or fix its modes: every directory under it 0700, every file 0600.

    Sets this process's umask to 077 first, for what it and its children create from then on.
    """
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    _restrict(data_dir, DIRECTORY_MODE)
    for root, directories, files in os.walk(data_dir):
        for name in directories:
            _restrict(Path(root, name), DIRECTORY_MODE)
        for name in files:
            _restrict(Path(root, name), FILE_MODE)


def _restrict(path: Path, mode: int) -> None:
    # A symlink's target is not ours to change, nor a file another user owns: left as they are.
    with contextlib.suppress(OSError):
        found = path.lstat()
        if stat.S_ISLNK(found.st_mode) or found.st_uid != os.getuid():
            return
        if stat.S_IMODE(found.st_mode) & ~mode:
            path.chmod(stat.S_IMODE(found.st_mode) & mode if stat.S_ISREG(found.st_mode) else mode)
