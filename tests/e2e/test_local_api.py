"""``scripts.local_api`` over real sockets: keep-alive connections, and the answers of ``chalice local``."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from chalicelib.http.gateway_responses import UNAUTHORIZED_BODY
from scripts.api_process import (
    HOST,
    free_port,
    keep_alive_command,
    running_server,
    stock_chalice_command,
)
from tests.helpers.patients import JOHN
from tests.helpers.processes import server_environment

AUTH = {"Authorization": f"Bearer {DEVELOPMENT_TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
# Headers that differ from one answer to the next, whichever server gives them.
PER_RESPONSE_HEADERS = {"date", "x-amzn-requestid"}


@pytest.fixture(scope="module")
def server_env(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    database = tmp_path_factory.mktemp("local-api") / "telehealth.db"
    shutil.copy(sqlite_template, database)
    return server_environment(f"sqlite:///{database}")


def serve(command: Callable[[int], list[str]], env: dict[str, str], log: Path) -> Iterator[int]:
    port = free_port()
    with running_server(command(port), port, env, log):
        yield port


@pytest.fixture(scope="module")
def keep_alive_port(server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve(keep_alive_command, server_env, tmp_path_factory.mktemp("logs") / "local_api.log")


@pytest.fixture(scope="module")
def stock_port(server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve(stock_chalice_command, server_env, tmp_path_factory.mktemp("logs") / "chalice_local.log")


class KeepAliveClient:
    """One HTTP/1.1 connection; fails if the server answers in a way that ends it."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=10)
        self.local_address: tuple[str, int] | None = None

    def send(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        raw = json.dumps(body) if isinstance(body, dict) else body
        self.connection.request(method, path, body=raw, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        assert not response.will_close
        if method != "HEAD":
            assert response.getheader("Content-Length") == str(len(payload))
        address = self.connection.sock.getsockname()
        assert self.local_address in (None, address), "the client had to open a new connection"
        self.local_address = address
        return response.status, json.loads(payload) if payload else None


def test_a_keep_alive_connection_carries_every_kind_of_answer(keep_alive_port: int) -> None:
    client = KeepAliveClient(keep_alive_port)

    status, created = client.send("POST", "/patients", JSON_AUTH, {**JOHN, "email": "keep@example.com"})
    assert status == 201
    patient_path = f"/patients/{created['patient']['id']}"
    assert client.send("GET", patient_path, AUTH) == (200, created["patient"])
    for refused in ({}, {"Authorization": "Bearer wrong"}):
        status, body = client.send("GET", patient_path, refused)
        assert (status, body) == (401, {**UNAUTHORIZED_BODY, "request_id": body["request_id"]})
    status, body = client.send("GET", "/patients/999999", AUTH)
    assert (status, body["code"]) == (404, "patient_not_found")
    status, body = client.send("POST", "/patients", JSON_AUTH, {**JOHN, "email": "not-an-email"})
    assert (status, body["code"], body["field"]) == (400, "validation_failed", "email")
    status, body = client.send("OPTIONS", "/patients", {})
    assert (status, body["code"]) == (405, "method_not_allowed")  # no CORS: API Gateway's ANY says 405 too
    assert client.send("GET", patient_path, AUTH) == (200, created["patient"])


def test_head_and_chunked_requests_leave_the_connection_usable(keep_alive_port: int) -> None:
    client = KeepAliveClient(keep_alive_port)
    status, created = client.send("POST", "/patients", JSON_AUTH, {**JOHN, "email": "chunk@example.com"})
    patient_path = f"/patients/{created['patient']['id']}"

    # Chalice answers HEAD with 405 and a JSON body; stock chalice local sends that body, and the
    # client reads it as the start of the next answer.
    assert client.send("HEAD", patient_path, AUTH) == (405, None)
    assert client.send("GET", patient_path, AUTH) == (200, created["patient"])

    chunks = iter([b'{"name": "Chunked Body", ', b'"email": "chunked@example.com"}'])
    client.connection.request("POST", "/patients", body=chunks, headers=JSON_AUTH, encode_chunked=True)
    response = client.connection.getresponse()
    assert response.status == 201, response.read()
    assert json.loads(response.read())["patient"]["name"] == "Chunked Body"
    assert client.send("GET", patient_path, AUTH) == (200, created["patient"])


def answer(port: int, method: str, path: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    with contextlib.closing(connection):
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    parsed = json.loads(payload) if payload else None
    if isinstance(parsed, dict):
        parsed.pop("request_id", None)
    kept = {name.lower(): value for name, value in response.getheaders()}
    return {
        "status": response.status,
        "headers": {k: v for k, v in kept.items() if k not in PER_RESPONSE_HEADERS},
        "body": parsed,
    }


def test_a_304_leaves_the_connection_usable(keep_alive_port: int) -> None:
    client = KeepAliveClient(keep_alive_port)
    status, created = client.send("POST", "/patients", JSON_AUTH, {**JOHN, "email": "etag@example.com"})
    patient_path = f"/patients/{created['patient']['id']}"

    etag = f'"{created["patient"]["id"]}-1"'
    assert client.send("GET", patient_path, {**AUTH, "If-None-Match": etag}) == (304, None)
    assert client.send("GET", patient_path, AUTH) == (200, created["patient"])


REQUESTS_ANSWERED_ALIKE = [
    pytest.param("GET", "/patients/{id}", AUTH, None, id="get"),
    pytest.param("GET", "/patients?per_page=1", AUTH, None, id="list"),
    pytest.param("GET", "/patients/{id}", {}, None, id="missing-token"),
    pytest.param("GET", "/patients/{id}", {"Authorization": "Bearer wrong"}, None, id="wrong-token"),
    pytest.param("GET", "/patients/999999", AUTH, None, id="unknown-patient"),
    pytest.param("POST", "/patients", JSON_AUTH, "{not json", id="malformed-json"),
    pytest.param("POST", "/patients", {**AUTH, "Content-Type": "text/plain"}, "x", id="wrong-media-type"),
    pytest.param("OPTIONS", "/patients", {}, None, id="preflight"),
    pytest.param(
        "OPTIONS", "/patients/{id}", {"Origin": "https://clinic.example"}, None, id="preflight-origin"
    ),
    pytest.param("PATCH", "/patients/{id}", AUTH, None, id="unsupported-method"),
    pytest.param("GET", "/no-such-route", {}, None, id="unknown-route"),
]


@pytest.fixture(scope="module")
def patient_path(keep_alive_port: int) -> str:
    status, created = KeepAliveClient(keep_alive_port).send("POST", "/patients", JSON_AUTH, JOHN)
    assert status == 201
    return f"/patients/{created['patient']['id']}"


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS_ANSWERED_ALIKE)
def test_answers_match_stock_chalice_local(
    keep_alive_port: int,
    stock_port: int,
    patient_path: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
) -> None:
    path = path.replace("/patients/{id}", patient_path)

    ours = answer(keep_alive_port, method, path, headers, body)
    stock = answer(stock_port, method, path, headers, body)

    assert ours == stock


def test_the_stage_environment_overrides_the_shell(keep_alive_port: int) -> None:
    # GIVEN APP_STAGE=set-by-the-shell and no API_TOKENS (see server_environment)
    # WHEN the server runs --stage dev, whose config.json environment sets APP_STAGE=dev
    status, body = KeepAliveClient(keep_alive_port).send("GET", "/patients", AUTH)

    # THEN the development token, accepted by the dev stage only, is accepted
    assert status == 200, body


@pytest.mark.parametrize("command", [keep_alive_command, stock_chalice_command], ids=["ours", "stock"])
def test_the_prod_stage_refuses_sqlite(command: Callable[..., list[str]], server_env: dict[str, str]) -> None:
    # GIVEN the prod stage, whose config.json environment sets APP_STAGE=prod
    # WHEN the server starts it on SQLite
    result = subprocess.run(
        command(free_port(), stage="prod"),
        cwd=PROJECT_ROOT,
        env=server_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # THEN the prod settings refuse to start: prod reads its URL from the SSM parameter its
    # config.json names, and a plain (SQLite) DATABASE_URL beside that reference is refused
    assert result.returncode != 0
    assert (
        "ConfigurationError: set either DATABASE_URL_PARAMETER or DATABASE_URL"
        in result.stdout + result.stderr
    )


def test_autoreload_worker_serves_keep_alive_connections(tmp_path: Path, server_env: dict[str, str]) -> None:
    # chalice local's default, kept: a parent process restarts a worker that runs this module again.
    port = free_port()
    with running_server(keep_alive_command(port, autoreload=True), port, server_env, tmp_path / "log"):
        client = KeepAliveClient(port)
        for _ in range(3):
            status, body = client.send("GET", "/patients/999999", AUTH)
            assert (status, body["code"]) == (404, "patient_not_found")


SAFETY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@pytest.fixture(params=["keep_alive_port", "stock_port"], ids=["local_api", "stock_chalice_local"])
def either_port(request: pytest.FixtureRequest) -> int:
    """The port of ``make run``'s server, then of stock ``chalice local``: both answer in our shape."""
    return int(request.getfixturevalue(request.param))


def raw_answer(port: int, request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send bytes as they are (no client checks them) and read the one answer."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(response.read())


def assert_our_error(headers: dict[str, str], body: Any, code: str) -> None:
    assert body["code"] == code
    assert set(body) == {"code", "message", "request_id"}
    assert headers["content-type"] == "application/json"
    assert SAFETY_HEADERS.items() <= headers.items()


@pytest.mark.parametrize(
    "request_line",
    [
        "TRACE /patients HTTP/1.1",
        "CONNECT /patients HTTP/1.1",
        "FOO /patients HTTP/1.1",
        "PATCH /patients HTTP/1.1",
        "CONNECT http://127.0.0.1/patients HTTP/1.1",  # absolute-form
        "TRACE http://127.0.0.1/patients?page=1 HTTP/1.1",
    ],
)
def test_any_method_token_gets_405_with_allow_in_our_shape(either_port: int, request_line: str) -> None:
    # http.server has no do_TRACE, do_CONNECT, do_FOO: it answered each with an HTML 501
    status, headers, body = raw_answer(either_port, f"{request_line}\r\nHost: x\r\n\r\n".encode())

    assert status == 405
    assert_our_error(headers, body, "method_not_allowed")
    assert {method.strip() for method in headers["allow"].split(",")} == {"GET", "POST"}


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        pytest.param(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n", 400, "bad_request", id="authority-form"),
        pytest.param(b"GET /patients HTTP/1.1 extra\r\n\r\n", 400, "bad_request", id="request-line"),
        pytest.param(b"GET /patients HTTP/x.y\r\n\r\n", 400, "bad_request", id="version"),
        pytest.param(b"G(E)T /patients HTTP/1.1\r\n\r\n", 400, "bad_request", id="method-not-a-token"),
        pytest.param(b"GET /patients HTTP/2.0\r\n\r\n", 505, "http_version_not_supported", id="http2"),
        pytest.param(
            b"GET /patients?access_token=" + b"t" * 70_000 + b" HTTP/1.1\r\n\r\n",
            414,
            "uri_too_long",
            id="uri",
        ),
        pytest.param(
            b"GET /patients HTTP/1.1\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
            431,
            "header_too_large",
            id="header-line",
        ),
        pytest.param(
            b"GET /patients HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n",
            431,
            "header_too_large",
            id="header-count",
        ),
    ],
)
def test_requests_the_http_server_refuses_itself_get_our_json_not_html(
    either_port: int, request_head: bytes, status: int, code: str
) -> None:
    answered, headers, body = raw_answer(either_port, request_head)

    assert answered == status
    assert_our_error(headers, body, code)
    assert headers["connection"] == "close"


def test_a_refused_request_line_is_never_echoed(either_port: int) -> None:
    # GIVEN a token in the query of a request line the server cannot parse
    _status, headers, body = raw_answer(either_port, b"GET /patients?access_token=s3cret HTTP/1.1 x\r\n\r\n")

    # THEN neither the answer nor its headers repeat it
    assert "s3cret" not in json.dumps(body) + json.dumps(headers)
