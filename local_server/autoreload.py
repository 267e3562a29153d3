"""Chalice's autoreload, blind to the development database.

With autoreload (``chalice local``'s default) the child process polls every file
under the project each second (``chalice.cli.filewatch.stat``) and restarts the
server when one changes: the development SQLite file lives under the project
(``.data/``), so the dev migration and then every write restarted the server, and
requests sent meanwhile found no one listening. The database file and its
sidecars (``-wal``, ``-shm``, ``-journal``) are left out of that watch.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.engine import make_url


def ignore_database_in_autoreload(database_url: str) -> None:
    """Leave the SQLite file of ``database_url`` (if it is one) out of autoreload's watch."""
    if not database_url.startswith("sqlite"):
        return
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return
    real_path = os.path.realpath(database)
    name = os.path.basename(real_path)

    def is_database(path: str) -> bool:
        # The cheap test first: the watch calls this for every file of the project, every second.
        return os.path.basename(path).startswith(name) and os.path.realpath(path).startswith(real_path)

    _filter_stat_watcher(is_database)
    _filter_watchdog_restarter(is_database)


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
