"""Both local servers stop reading a request body at ``MAX_BODY_BYTES``, over real sockets.

Stock ``chalice local`` read any ``Content-Length``, and ``scripts.local_api`` any chunked body,
before the gateway's authorizer saw the request: one unauthenticated 600 MB POST took the API from
95 to 709 MB. None of these requests carries a token: the refusal comes before the authorizer.
"""

from __future__ import annotations

import http.client
import json
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from scripts.api_process import HOST, free_port, keep_alive_command, running_server, stock_chalice_command
from tests.helpers.processes import server_environment

LIMIT = 4096
MEGABYTE = 1024 * 1024
ENDLESS_BYTES = 50 * MEGABYTE
CHUNK = b"x" * 65536
POST_HEAD = b"POST /patients HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port

    def peak_rss_bytes(self) -> int:
        """The server process's highest resident set size so far (VmHWM)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) * 1024


@pytest.fixture(
    scope="module", params=[stock_chalice_command, keep_alive_command], ids=["chalice-local", "local-api"]
)
def server(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    command: Callable[[int], list[str]] = request.param
    directory = tmp_path_factory.mktemp("body-limits")
    shutil.copy(sqlite_template, directory / "telehealth.db")
    env = {**server_environment(f"sqlite:///{directory / 'telehealth.db'}"), "MAX_BODY_BYTES": str(LIMIT)}
    port = free_port()
    # --no-autoreload: the process started is the one that serves, whose memory is measured
    with running_server(command(port), port, env, directory / "server.log") as process:
        yield Server(process, port)


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], Any]:
    response = http.client.HTTPResponse(connection)
    response.begin()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, json.loads(response.read())


def answer_to(port: int, request: bytes) -> tuple[int, dict[str, str], Any]:
    with socket.create_connection((HOST, port), timeout=5) as connection:
        connection.sendall(request)
        return read_answer(connection)


def assert_refused_and_closed(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> None:
    answered, headers, body = answer
    assert (answered, body["code"]) == (status, code), body
    assert set(body) == {"code", "message", "request_id"}
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue\r\n"], ids=["plain", "expect-100"])
def test_an_oversized_content_length_is_refused_before_a_byte_of_the_body(
    server: Server, expect: bytes
) -> None:
    # GIVEN a request declaring 600 MB, of which it sends nothing (a reader of the body would wait)
    head = POST_HEAD + expect + b"Content-Length: 629145600\r\n\r\n"

    # WHEN only its head reaches the server
    started = time.monotonic()
    answer = answer_to(server.port, head)

    # THEN it gets the app's 413 at once, no 100 Continue before it, and the connection is closed
    assert_refused_and_closed(answer, 413, "payload_too_large")
    assert f"at most {LIMIT} bytes" in answer[2]["message"]
    assert time.monotonic() - started < 3


def test_a_body_of_exactly_the_limit_reaches_the_gateway(server: Server) -> None:
    # At the limit the gateway gets the request, and its authorizer refuses it (no token)
    status, _headers, body = answer_to(
        server.port, POST_HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % LIMIT + b"{" * LIMIT
    )

    assert (status, body["code"]) == (401, "unauthorized")


def test_an_endless_chunked_body_is_cut_at_the_limit_in_bounded_memory(server: Server) -> None:
    # GIVEN the server's peak memory so far
    peak_before = server.peak_rss_bytes()

    # WHEN a client streams 50 MB of chunks, watching for an answer between chunks
    sent = 0
    with socket.create_connection((HOST, server.port), timeout=10) as connection:
        connection.sendall(POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        while sent < ENDLESS_BYTES and not select.select([connection], [], [], 0)[0]:
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        else:
            if sent >= ENDLESS_BYTES:  # never answered while sending: end the body to get an answer
                connection.sendall(b"0\r\n\r\n")
        answer = read_answer(connection)

    # THEN the 413 came long before the end, and the server's memory did not grow by the body
    assert_refused_and_closed(answer, 413, "payload_too_large")
    assert sent < 20 * MEGABYTE, f"answered after {sent} bytes"
    assert server.peak_rss_bytes() - peak_before < 10 * MEGABYTE


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: 12abc\r\n\r\n", id="length-not-a-number"),
        pytest.param(b"Content-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", id="two-lengths"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", id="negative-chunk-size"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", id="chunk-size-not-hex"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n0\r\n\r\n", id="short-chunk"),
        pytest.param(b"Transfer-Encoding: gzip\r\n\r\n", id="not-chunked"),
        pytest.param(
            b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n", id="both"
        ),
    ],
)
def test_a_body_framed_in_a_way_no_reader_can_trust_is_a_400_and_a_closed_connection(
    server: Server, framing: bytes
) -> None:
    assert_refused_and_closed(answer_to(server.port, POST_HEAD + framing), 400, "bad_request")


def test_a_chunked_body_within_the_limit_reaches_the_app(server: Server) -> None:
    # Stock chalice local read no chunked body at all: the view saw none, and the chunks were
    # taken for the next request
    body = json.dumps({"name": "Chunked Limit", "email": f"chunked-{server.port}@example.com"}).encode()
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    auth = f"Authorization: Bearer {DEVELOPMENT_TOKEN}\r\n".encode()

    status, _headers, created = answer_to(
        server.port, POST_HEAD + auth + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks
    )

    assert status == 201, created
    assert created["patient"]["name"] == "Chunked Limit"
