"""What ``chalice local`` needs besides the app: a schema on a fresh checkout, one log line per request.

Loaded by app.py only when chalice's local server code is (never in Lambda).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chalicelib.config import get_settings, serving_with_chalice_local

# chalicelib.http's access logger: one line per request, the route template and never the query.
access_logger = logging.getLogger("telehealth.access")
# Per server thread: whether the app wrote the access line of the request being answered.
_current_request = threading.local()


class AccessLineNoticed(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _current_request.access_line_logged = True
        return True


class QuietRequestLog:
    """``http.server`` request handler methods that never print the request line.

    Its own lines (``127.0.0.1 - - [...] "GET /patients?access_token=… HTTP/1.1" 200 -``)
    carry the query string, tokens included, beside our access line. A request
    the app never saw (refused by the local gateway or by the HTTP server itself)
    gets an access line here instead, in the same shape, without a route.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not getattr(_current_request, "access_line_logged", False):
            extra = {"method": getattr(self, "command", None), "route": None, "duration_ms": None}
            access_logger.info("request", extra={**extra, "status": code if isinstance(code, int) else None})
        _current_request.access_line_logged = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        # Also log_error's way out: its arguments quote the raw request line ("Bad request
        # syntax (...)"); the access line of the error answer that follows says enough.
        pass


def prepare_local_server() -> None:
    """Under ``chalice local``: one log line per request; in the dev stage, the dev database's schema.

    The development SQLite file (no DATABASE_URL) gets its tables, or the
    migrations it misses, before the first request: a fresh checkout served by
    plain ``chalice local`` would otherwise answer every request with a 503.
    Any other database is migrated by ``make migrate``, never by a server.
    """
    if not serving_with_chalice_local():  # chalice.test.Client loads chalice.local too
        return
    from chalice import local

    if not any(isinstance(existing, AccessLineNoticed) for existing in access_logger.filters):
        access_logger.addFilter(AccessLineNoticed())
    for name in ("log_request", "log_message"):  # stock chalice local's handler too
        setattr(local.ChaliceRequestHandler, name, getattr(QuietRequestLog, name))
    settings = get_settings()
    if settings.stage == "dev" and settings.uses_development_database:
        from chalicelib.schema import upgrade_database

        upgrade_database(settings.database_url)
