"""The local servers' request handler: one log line per request, our answer shape where the HTTP
server would answer by itself in HTML, a body never read past ``MAX_BODY_BYTES``, and the route
that runs a scheduled function now.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import types
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chalicelib import bootstrap
from chalicelib.http.gateway_responses import GATEWAY_RESPONSE_HEADERS, SERVER_ERRORS
from local_server.answers import local_error_body
from local_server.request_body import BodyRefused, BodyTooLarge, read_body
from local_server.schedules import TRIGGER_HEADER, TRIGGER_PREFIX, TriggerCaller, trigger

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
# After refusing a body, how long the server reads (and drops) what the client still sends before it
# closes: closing with unread data sends a reset, which may destroy the answer before the client reads
# it (RFC 9112 section 9.6). Bounded in time, and nothing read is kept.
LINGER_SECONDS = 1.0


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

    Every way in (``do_<METHOD>``) reads the body first, or refuses it (413 past
    ``MAX_BODY_BYTES``, 400 for a framing it cannot trust) and closes the connection,
    before any authorizer or view runs; ``_parse_payload`` then hands the gateway what was read.
    """

    # http.server's, which mypy sees as Any through chalice's six import, and which these methods set.
    path: str
    request_version: str
    _body: bytes | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # only for methods chalice has no do_<METHOD> for
            return self._handle_any_method if METHOD_TOKEN.fullmatch(name[3:]) else self._refuse_bad_request
        raise AttributeError(name)

    def _serve(self) -> None:
        if self._read_body():
            self._generic_handle()

    # Chalice's are all its _generic_handle, which would read any Content-Length.
    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def do_POST(self) -> None:
        """``POST /__scheduled/<name>`` runs that scheduled function now (``local_server.schedules``)."""
        if not self._read_body():
            return
        if not self.path.startswith(TRIGGER_PREFIX):
            self._generic_handle()
            return
        hosts = self.headers.get_all("Host", [])
        caller = TriggerCaller(
            address=self.client_address[0],
            host=hosts[0] if len(hosts) == 1 else None,
            origin_sent="Origin" in self.headers,
            trigger_header=self.headers.get(TRIGGER_HEADER),
        )
        self._send_json(*trigger(self.path, caller))

    def _read_body(self) -> bool:
        """Read this request's body for ``_parse_payload``; False when it was refused (and answered)."""
        try:
            self._body = read_body(self.headers, self.rfile, bootstrap.settings().max_body_bytes)
        except BodyRefused as refused:
            self._body = None
            self._refuse_and_close(refused)
            return False
        return True

    def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
        return dict(self.headers), self._body

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` (curl, for a large upload): a body it would refuse is never asked for."""
        try:
            declared = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            declared = 0  # refused when the body is read
        limit = bootstrap.settings().max_body_bytes
        if declared > limit:
            self._refuse_and_close(BodyTooLarge(limit))
            return False
        self.send_response_only(HTTPStatus.CONTINUE)
        self.end_headers()
        return True

    def _refuse_and_close(self, refused: BodyRefused) -> None:
        """Our answer to a refused body, then the connection closed without reading that body."""
        error_code, _text = SERVER_ERRORS[refused.status]
        self._send_json(refused.status, local_error_body(error_code, str(refused)), {"Connection": "close"})
        self._linger()

    def _linger(self) -> None:
        """Half-close, then drop what the client still sends for at most LINGER_SECONDS."""
        connection: socket.socket = self.connection
        try:
            self.wfile.flush()
            connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                connection.settimeout(left)
                if not connection.recv(65536):
                    break
        except OSError:  # the client is gone, or the time is up
            pass

    def _handle_any_method(self) -> None:
        if not self._read_body():
            return
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
