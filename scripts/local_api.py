"""``chalice local`` for keep-alive clients: the API server behind ``make run``.

``python -m scripts.local_api [--host H] [--port P] [--stage S] [--no-autoreload]``
takes the options of ``chalice local`` and runs chalice's own ``local`` command:
the same app loading, stage environment variables from ``.chalice/config.json``,
route validation, local gateway (built-in authorizers, CORS, error responses)
and autoreload. Only the request handler differs. Chalice's handler leaves
Nagle's algorithm on and writes each answer in two pieces (headers, then body),
so on a reused connection the body waits for the client's delayed ACK: ~44 ms
per request. It also desynchronises a reused connection after a HEAD request
or a chunked request body; this handler fixes both. And where http.server
answers by itself in HTML (a method without ``do_<METHOD>``: 501; a request it
cannot parse: 400, 414, 431, 505), this handler passes every method token to
the gateway (Chalice's router answers 405 with ``Allow``) and answers the rest
in our JSON error shape.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from chalice import local
from chalice.app import Chalice
from chalice.cli import local as chalice_local_command
from chalice.cli.factory import CLIFactory
from chalice.config import Config

from chalicelib.gateway_responses import GATEWAY_RESPONSE_HEADERS, SERVER_ERRORS
from chalicelib.local_serving import QuietRequestLog

PROJECT_DIR = Path(__file__).resolve().parent.parent
MAX_CHUNK_SIZE_LINE = 1024
METHOD_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 section 5.6.2


class MalformedChunkedBody(ValueError):
    pass


def read_chunked_body(rfile: IO[bytes]) -> bytes:
    """Read a ``Transfer-Encoding: chunked`` body up to and including its trailer."""
    chunks = []
    while True:
        size_line = rfile.readline(MAX_CHUNK_SIZE_LINE)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise MalformedChunkedBody("chunk size is not hexadecimal") from None
        if size == 0:
            break
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(MAX_CHUNK_SIZE_LINE).strip():
            raise MalformedChunkedBody("chunk is shorter than its size")
        chunks.append(chunk)
    while rfile.readline(MAX_CHUNK_SIZE_LINE).strip():  # trailer fields, unused
        pass
    return b"".join(chunks)


class KeepAliveRequestHandler(QuietRequestLog, local.ChaliceRequestHandler):
    """Chalice's request handler, fit for connections that carry many requests, logging no request line."""

    # Sends the body segment at once instead of after the client's (delayed) ACK of the headers.
    disable_nagle_algorithm = True

    def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
        # Chalice reads only Content-Length bodies; a chunked one would be parsed as the next request.
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return super()._parse_payload()
        try:
            body: bytes | None = read_chunked_body(self.rfile)
        except MalformedChunkedBody:
            # Where the next request starts is unknown: answer this one, then hang up.
            self.close_connection = True
            body = None
        return dict(self.headers), body

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_<METHOD> (TRACE, CONNECT, FOO) with an HTML 501:
        # every method token goes to the gateway like GET, and Chalice's router answers 405 with Allow.
        if name.startswith("do_"):
            return self._generic_handle if METHOD_TOKEN.fullmatch(name[3:]) else self._bad_request
        raise AttributeError(name)

    def _generic_handle(self) -> None:
        target = urlsplit(self.path)
        if target.scheme in ("http", "https") and target.netloc:  # absolute-form: the path is ours
            self.path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        elif not self.path.startswith("/"):  # authority-form (CONNECT host:port) or *: no resource of ours
            self._bad_request()
            return
        super()._generic_handle()

    def _bad_request(self) -> None:
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
        payload = json.dumps({"code": error_code, "message": text, "request_id": str(uuid.uuid4())})
        self.log_error("code %d", code)
        self.send_response(code)
        self._send_headers(
            {**GATEWAY_RESPONSE_HEADERS, "Content-Length": str(len(payload)), "Connection": "close"}
        )
        if self.command != "HEAD":
            self.wfile.write(payload.encode())

    def _send_http_response_with_body(self, code: int, headers: dict[str, Any], body: str | bytes) -> None:
        if self.command != "HEAD":
            super()._send_http_response_with_body(code, headers, body)
            return
        # The same headers as for GET, but no body: the client would read it as the next response.
        payload = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)


class BurstTolerantServer(local.ThreadedHTTPServer):
    # socketserver listens with a backlog of 5: a burst of concurrent clients gets connections reset.
    request_queue_size = 128


class KeepAliveCLIFactory(CLIFactory):
    """Chalice's CLI factory, building the local server with ``KeepAliveRequestHandler``."""

    def create_local_server(
        self, app_obj: Chalice, config: Config, host: str, port: int
    ) -> local.LocalDevServer:
        # As chalice.local.create_local_server: the swapped class keeps current_request per thread.
        local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
        app_obj.__class__ = local.CustomLocalChalice
        return local.LocalDevServer(
            app_obj, config, host, port, handler_cls=KeepAliveRequestHandler, server_cls=BurstTolerantServer
        )


def main() -> None:
    options = sys.argv[1:]
    # Autoreload's parent process starts its worker with sys.argv: make that this module again.
    sys.argv = [sys.executable, "-m", "scripts.local_api", *options]
    # What the `chalice` command group does before running `local`.
    os.chdir(PROJECT_DIR)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    factory = KeepAliveCLIFactory(str(PROJECT_DIR), environ=os.environ)
    chalice_local_command.main(
        args=options, prog_name="python -m scripts.local_api", obj={"factory": factory}
    )


if __name__ == "__main__":
    main()
