"""``chalice local`` for keep-alive clients: the API server behind ``make run``.

``python -m scripts.local_api [--host H] [--port P] [--stage S] [--no-autoreload]``
takes the options of ``chalice local`` and runs chalice's own ``local`` command:
the same app loading, stage environment variables from ``.chalice/config.json``,
route validation, local gateway (built-in authorizers, CORS, error responses)
and autoreload. Only the request handler differs. Chalice's handler leaves
Nagle's algorithm on and writes each answer in two pieces (headers, then body),
so on a reused connection the body waits for the client's delayed ACK: ~44 ms
per request. It also desynchronises a reused connection after a HEAD request
or a chunked request body; this handler fixes both (the body is read, within
``MAX_BODY_BYTES``, by ``LocalRequestHandling``, as under stock ``chalice local``). Where http.server would
answer by itself in HTML, it answers as stock ``chalice local`` does with our
app: ``local_server.request_handling.LocalRequestHandling``, inherited here.
The server is built, and ``local_server.prepare`` run, in whichever thread and
process loads the app (autoreload's child loads it in a server thread).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from chalice import local
from chalice.app import Chalice
from chalice.cli import local as chalice_local_command
from chalice.cli.factory import CLIFactory
from chalice.config import Config

from chalicelib import bootstrap
from chalicelib.config.settings import PROJECT_ROOT
from local_server import prepare
from local_server.exposure import refuse_exposed_development_token
from local_server.request_handling import LocalRequestHandling


class KeepAliveRequestHandler(LocalRequestHandling, local.ChaliceRequestHandler):
    """Chalice's request handler, as our app configures it, fit for connections that carry many requests."""

    # Sends the body segment at once instead of after the client's (delayed) ACK of the headers.
    disable_nagle_algorithm = True

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
        refuse_exposed_development_token(host, bootstrap.auth_settings())
        prepare(app_obj)
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
    os.chdir(PROJECT_ROOT)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    factory = KeepAliveCLIFactory(str(PROJECT_ROOT), environ=os.environ)
    chalice_local_command.main(
        args=options, prog_name="python -m scripts.local_api", obj={"factory": factory}
    )
