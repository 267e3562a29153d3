"""Local serving: what a server on this machine adds to the app, never shipped to Lambda.

Lambda runs ``app.py`` and ``chalicelib``; a local server also needs chalice's
local gateway to answer as our API Gateway does (``gateway``), a request handler
that logs one line per request without its query and answers its own errors in
our shape (``request_handling``), the scheduled functions on a timer and on
request (``schedules``), the development database migrated (``database``), and
autoreload not restarting the server at each write to it (``autoreload``).

Whoever starts a server wires it: ``python -m scripts.local_api`` (``make run``,
``keep_alive``) calls ``prepare`` when it builds its server; plain ``chalice
local``, which only imports app.py, gets ``serve_with_stock_chalice_local`` from
app.py. ``chalice.test.Client`` needs only ``gateway.emulate_in_local_gateway``.
"""

from __future__ import annotations

import sys
import threading

from chalice.app import Chalice

from chalicelib import bootstrap
from local_server.autoreload import ignore_data_in_autoreload
from local_server.database import migrate_development_database
from local_server.exposure import chalice_local_host, refuse_exposed_development_token
from local_server.gateway import emulate_in_local_gateway
from local_server.request_handling import notice_access_lines, use_in_stock_handler
from local_server.schedules import run_schedules_locally

_preparing = threading.Lock()
_prepared_apps: list[Chalice] = []


def prepare(app: Chalice) -> None:
    """Ready this process to serve ``app`` locally; once per process, from whichever thread loads it.

    Keeps autoreload blind to a SQLite database (before anything writes it), migrates the
    development database, makes the local gateway answer as ours, notices the app's access
    lines, and starts the scheduled functions' timers.
    """
    with _preparing:
        if _prepared_apps:  # a second call would start every timer twice
            return
        _prepared_apps.append(app)
        settings = bootstrap.settings()
        ignore_data_in_autoreload(settings.data_dir, settings.database_url)
        emulate_in_local_gateway()
        notice_access_lines()
        migrate_development_database(settings)
        run_schedules_locally(app, settings.stage)


def serve_with_stock_chalice_local(app: Chalice) -> None:
    """``prepare``, and chalice's own request handler made ours: for plain ``chalice local``.

    First, a ``--host`` beyond this machine while the development token is accepted ends the process.
    """
    refuse_exposed_development_token(chalice_local_host(sys.argv), bootstrap.auth_settings())
    use_in_stock_handler()
    prepare(app)
