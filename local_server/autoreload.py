"""Chalice's autoreload, blind to the development database.

With autoreload (``chalice local``'s default) the child process polls every file
under the project each second (``chalice.cli.filewatch.stat``) and restarts the
server when one changes: the development SQLite file lives under the project
(``.data/``), so the dev migration and then every write restarted the server, and
requests sent meanwhile found no one listening. The database file and its
sidecars (``-wal``, ``-shm``, ``-journal``) are left out of that watch, and so is the whole data
dir: the keys a laptop makes there on first use would restart it too.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url


def ignore_data_in_autoreload(data_dir: Path, database_url: str) -> None:
    """Leave the data dir (the dev database, a laptop's keys, the stack's files) and the SQLite
    file of ``database_url``, wherever it is, out of autoreload's watch."""
    data_dirs = tuple(
        {os.path.join(os.path.abspath(data_dir), ""), os.path.join(os.path.realpath(data_dir), "")}
    )
    database = make_url(database_url).database if database_url.startswith("sqlite") else None
    real_database = os.path.realpath(database) if database and database != ":memory:" else None
    database_name = os.path.basename(real_database) if real_database else None

    def is_data(path: str) -> bool:
        # Cheap tests only, but for a file named like the database: the watch calls this for every
        # file of the project, every second.
        if path.startswith(data_dirs):
            return True
        if database_name is not None and os.path.basename(path).startswith(database_name):
            return os.path.realpath(path).startswith(str(real_database))
        return False

    _filter_stat_watcher(is_data)
    _filter_watchdog_restarter(is_data)


def _filter_stat_watcher(ignored: Callable[[str], bool]) -> None:
    from chalice.cli.filewatch import stat

    watcher: Any = stat.StatFileWatcher
    if getattr(watcher, "_ignores_database", False):
        return
    walk = watcher._recursive_walk_files
    single_pass_poll = watcher._single_pass_poll

    def walk_without_database(self: Any, root_dir: str) -> Iterator[str]:
        return (path for path in walk(self, root_dir) if not ignored(path))

    def poll_without_database(self: Any, root_dir: str, callback: Callable[[], None]) -> None:
        # The first scan may have seen the file before this filter: a vanished file restarts too.
        for path in [path for path in self._mtime_cache if ignored(path)]:
            del self._mtime_cache[path]
        single_pass_poll(self, root_dir, callback)

    watcher._recursive_walk_files = walk_without_database
    watcher._single_pass_poll = poll_without_database
    watcher._ignores_database = True


def _filter_watchdog_restarter(ignored: Callable[[str], bool]) -> None:
    # Chalice watches with watchdog instead when it is installed (not by our requirements).
    if importlib.util.find_spec("watchdog") is None:
        return
    from chalice.cli.filewatch import eventbased

    restarter: Any = eventbased.WatchdogRestarter
    if getattr(restarter, "_ignores_database", False):
        return
    on_any_event = restarter.on_any_event

    def on_event_but_the_database(self: Any, event: Any) -> None:
        if not ignored(os.fsdecode(event.src_path)):
            on_any_event(self, event)

    restarter.on_any_event = on_event_but_the_database
    restarter._ignores_database = True
