"""The local servers' request handler: one log line per request, our answer shape where the HTTP
server would answer by itself in HTML, and the route that runs a scheduled function now.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import types
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib.http.gateway_responses import GATEWAY_RESPONSE_HEADERS, SERVER_ERRORS
from local_server.answers import local_error_body
from local_server.schedules import TRIGGER_PREFIX, trigger

if TYPE_CHECKING:  # as a base class only for mypy: copied onto chalice's own handler, it must not inherit
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

    One definition: ``use_in_stock_handler`` copies them onto chalice's
    ``ChaliceRequestHandler``, and ``local_server.keep_alive``'s handler inherits them.
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
        """``POST /__scheduled/<name>`` runs that scheduled function now (``local_server.schedules``)."""
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


def notice_access_lines() -> None:
    """Let ``log_request`` know when the app wrote the request's access line itself."""
    if not any(isinstance(existing, AccessLineNoticed) for existing in access_logger.filters):
        access_logger.addFilter(AccessLineNoticed())


def use_in_stock_handler() -> None:
    """Give chalice's own ``ChaliceRequestHandler`` (plain ``chalice local``) these methods."""
    from chalice import local

    for name, method in vars(LocalRequestHandling).items():
        if isinstance(method, types.FunctionType):
            setattr(local.ChaliceRequestHandler, name, method)
