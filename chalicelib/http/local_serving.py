"""What ``chalice local`` needs besides the app: a schema on a fresh checkout, one log line per
request, our answer shape where its HTTP server would answer by itself in HTML, and the route
that runs a scheduled function now.

Used by app.py only when chalice's local server code is loaded (never in Lambda); it imports
nothing that app.py has not loaded already.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import types
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import bootstrap  # TRANSITIONAL
from chalicelib.http.gateway_responses import GATEWAY_RESPONSE_HEADERS, SERVER_ERRORS
from chalicelib.http.startup import serving_with_chalice_local

if TYPE_CHECKING:  # chalice.local (and http.server) load only under chalice local
    from chalice.local import ChaliceRequestHandler as _RequestHandler
else:
    _RequestHandler = object

# chalicelib.http.middleware's access logger: one line per request, the route template and never the query.
access_logger = logging.getLogger("telehealth.access")
# Per server thread: whether the app wrote the access line of the request being answered.
_current_request = threading.local()


class AccessLineNoticed(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _current_request.access_line_logged = True
        return True


METHOD_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 section 5.6.2


class LocalRequestHandling(_RequestHandler):
    """Request handler methods for both local servers: stock ``chalice local`` and ``scripts.local_api``.

    One definition: ``prepare_local_server`` copies them onto chalice's
    ``ChaliceRequestHandler``, and ``scripts.local_api``'s handler inherits them.
    Written without ``super()``, which would not work once copied.

    ``http.server`` answers by itself, in HTML, a method without a ``do_<METHOD>``
    (TRACE, CONNECT, FOO: 501) and a request it cannot parse (400, 414, 431, 505):
    every method token goes to the gateway like GET instead (Chalice's router
    answers 405 with ``Allow``), and the rest is answered in our JSON error shape.
    Its log line (``127.0.0.1 - - [...] "GET /patients?access_token=… HTTP/1.1" 200 -``)
    carries the query string, tokens included, beside our access line: it is never
    printed. A request the app never saw (refused by the local gateway or by the
    HTTP server itself) gets an access line here instead, in the same shape, without a route.
    """

    # http.server's, which mypy sees as Any through chalice's six import, and which these methods set.
    path: str
    request_version: str

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # only for methods chalice has no do_<METHOD> for
            return self._handle_any_method if METHOD_TOKEN.fullmatch(name[3:]) else self._refuse_bad_request
        raise AttributeError(name)

    def do_POST(self) -> None:
        """``POST /__scheduled/<name>`` runs that scheduled function now (``local_schedules``)."""
        from chalicelib.http.local_schedules import TRIGGER_PREFIX, trigger

        if not self.path.startswith(TRIGGER_PREFIX):
            self._generic_handle()
            return
        self._parse_payload()  # read past any body: the connection may carry another request
        self._send_json(*trigger(self.path, self.client_address[0]))

    def _handle_any_method(self) -> None:
        target = urlsplit(self.path)
        if target.scheme in ("http", "https") and target.netloc:  # absolute-form: the path is ours
            self.path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        elif not self.path.startswith("/"):  # authority-form (CONNECT host:port) or *: no resource of ours
            self._refuse_bad_request()
            return
        self._generic_handle()

    def _refuse_bad_request(self) -> None:
        self.send_error(HTTPStatus.BAD_REQUEST)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, 414, 431, 505) in our error shape, not HTML.

        ``message`` and ``explain`` quote the request line, query string and all: never sent or logged.
        """
        error_code, text = SERVER_ERRORS.get(code, SERVER_ERRORS[HTTPStatus.BAD_REQUEST])
        # Until it has read a valid version, http.server assumes HTTP/0.9 and writes no status line
        # nor headers: the client would take our JSON for a broken status line.
        if self.request_version == "HTTP/0.9":
            self.request_version = self.protocol_version
        self._send_json(code, local_error_body(error_code, text), {"Connection": "close"})

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """An answer of the local server itself, with the headers of our gateway's own answers."""
        payload = json.dumps(body).encode()
        self.send_response(status)
        length = str(len(payload))
        self._send_headers({**GATEWAY_RESPONSE_HEADERS, "Content-Length": length, **(headers or {})})
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not getattr(_current_request, "access_line_logged", False):
            extra = {"method": getattr(self, "command", None), "route": None, "duration_ms": None}
            access_logger.info("request", extra={**extra, "status": code if isinstance(code, int) else None})
        _current_request.access_line_logged = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        # Also log_error's way out: its arguments quote the raw request line ("Bad request
        # syntax (...)"); the access line of the error answer that follows says enough.
        pass


def local_error_body(code: str, message: str) -> dict[str, Any]:
    """Our error shape for an answer of the local server itself: the app never saw the request,
    so the id is the server's own."""
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}


def prepare_local_server() -> None:
    """Under ``chalice local``: ``LocalRequestHandling``; in the dev stage, the dev database's schema.

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
    for name, method in vars(LocalRequestHandling).items():
        if isinstance(method, types.FunctionType):
            setattr(local.ChaliceRequestHandler, name, method)
    settings = bootstrap.settings()
    if settings.stage == "dev" and settings.uses_development_database:
        from chalicelib.storage.migrate import upgrade_database

        upgrade_database(settings.database_url)
