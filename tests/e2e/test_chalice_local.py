"""The API over real HTTP: ``chalice local`` in a subprocess, as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.storage.migrate import upgrade_database
from scripts.api_process import free_port, keep_alive_command, running_server, stock_chalice_command
from tests.helpers.patients import JOHN, without_phone
from tests.helpers.processes import run_in_a_session
from tests.helpers.waiting import parse_json_lines, run_together

DEV_TOKEN = {"Authorization": "Bearer secret-token-123"}
AUTORELOAD_POLL_SECONDS = 1  # chalice.cli.filewatch.stat.StatFileWatcher.POLL_INTERVAL
UNAUTHORIZED = {"code": "unauthorized", "message": "Missing or invalid bearer token"}


def serve(tmp_path_factory: pytest.TempPathFactory, command: Callable[[int], list[str]]) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("e2e")
    database = directory / "telehealth.db"
    upgrade_database(f"sqlite:///{database}")
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE")}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    port = free_port()
    with running_server(command(port), port, env, directory / "server.log"):
        yield f"http://127.0.0.1:{port}"
    assert b"Traceback" not in (directory / "server.log").read_bytes()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stock ``chalice local``, exactly as a user starts it, on a migrated SQLite file."""
    yield from serve(tmp_path_factory, stock_chalice_command)


@pytest.fixture(scope="module")
def run_command_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server ``make run`` starts (scripts.local_api)."""
    yield from serve(tmp_path_factory, keep_alive_command)


def call(method: str, url: str, body: Any = None, headers: dict[str, str] = DEV_TOKEN) -> requests.Response:
    data = None if body is None else json.dumps(body)
    hdrs = {**headers, "Content-Type": "application/json"} if data is not None else headers
    return requests.request(method, url, data=data, headers=hdrs, timeout=10)


def test_every_endpoint_over_http(base_url: str) -> None:
    created = call("POST", f"{base_url}/patients", without_phone(JOHN))
    assert created.status_code == 201
    assert created.json()["message"] == "Patient created successfully"
    patient_url = f"{base_url}/patients/{created.json()['patient']['id']}"

    fetched = call("GET", patient_url)
    assert fetched.status_code == 200 and fetched.json()["email"] == JOHN["email"]
    assert fetched.headers["Content-Type"] == "application/json"

    updated = call("PUT", patient_url, {"phone": "987-654-3210"})
    assert updated.status_code == 200 and updated.json()["patient"]["phone"] == "987-654-3210"

    listed = call("GET", f"{base_url}/patients?page=1&per_page=10")
    assert listed.status_code == 200 and listed.json()["total"] >= 1

    deleted = call("DELETE", patient_url)
    assert deleted.json() == {"message": "Patient deleted successfully"}
    assert call("GET", patient_url).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Token secret-token-123"},
    ],
)
def test_refusals_are_401_json_over_http(base_url: str, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/patients"), ("POST", "/patients"), ("DELETE", "/patients/1")):
        response = call(method, f"{base_url}{path}", headers=headers)

        assert response.status_code == 401
        assert response.json() == {**UNAUTHORIZED, "request_id": response.headers["x-amzn-RequestId"]}
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="telehealth-api"')


def test_client_errors_over_http(base_url: str) -> None:
    bad_json = requests.post(
        f"{base_url}/patients",
        data="{nope",
        headers={**DEV_TOKEN, "Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "malformed_request"
    assert call("GET", f"{base_url}/patients/not-a-number").status_code == 404
    assert call("GET", f"{base_url}/patients?per_page=1000").status_code == 400


def test_sixteen_concurrent_creates_over_http(run_command_url: str) -> None:
    # Stock chalice local listens with socketserver's backlog of 5, so a burst of 16 new
    # connections can be reset before reaching the app; the run command's server listens with 128.
    body = {"name": "Race", "email": "race-e2e@example.com"}
    responses = run_together(16, lambda i: call("POST", f"{run_command_url}/patients", body))

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 15}


SERVER_COMMANDS = pytest.mark.parametrize(
    "command", [stock_chalice_command, keep_alive_command], ids=["chalice-local", "local-api"]
)
# Variables a developer's shell or the suite may hold, which a fresh checkout does not.
NOT_ON_A_FRESH_CHECKOUT = ("DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE", "LOG_FORMAT")


@SERVER_COMMANDS
def test_a_fresh_checkout_serves_at_once(tmp_path: Path, command: Callable[[int], list[str]]) -> None:
    # GIVEN a checkout where nothing was migrated: no DATABASE_URL, an empty data directory
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_FRESH_CHECKOUT}
    env["TELEHEALTH_DATA_DIR"] = str(tmp_path / "data")
    port = free_port()

    # WHEN the server is started the way Chalice users start one
    with running_server(command(port), port, env, tmp_path / "server.log"):
        base_url = f"http://127.0.0.1:{port}"
        listed = call("GET", f"{base_url}/patients")
        created = call("POST", f"{base_url}/patients", without_phone(JOHN))

    # THEN the development database was created before the first request, which it answers
    assert listed.status_code == 200 and listed.json()["total"] == 0
    assert created.status_code == 201
    assert (tmp_path / "data" / "telehealth.db").is_file()
    assert "Traceback" not in (tmp_path / "server.log").read_text()


@SERVER_COMMANDS
def test_one_log_line_per_request_and_never_a_query_or_a_token(
    tmp_path: Path, command: Callable[[int], list[str]]
) -> None:
    # GIVEN a server on a migrated database, with a token of its own
    database = tmp_path / "telehealth.db"
    upgrade_database(f"sqlite:///{database}")
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_FRESH_CHECKOUT}
    env.update(DATABASE_URL=f"sqlite:///{database}", API_TOKENS="tester:log-test-token-4711", METRICS="emf")
    port = free_port()
    log_path = tmp_path / "server.log"
    token = {"Authorization": "Bearer log-test-token-4711"}

    # WHEN requests carry tokens in the query and in headers, answered by the app and by the gateway
    with running_server(command(port), port, env, log_path):
        base_url = f"http://127.0.0.1:{port}"
        statuses = [
            call("GET", f"{base_url}/patients", headers=token).status_code,
            call("GET", f"{base_url}/patients?access_token=query-secret-0815", headers=token).status_code,
            call(
                "GET", f"{base_url}/patients?page=1", headers={"Authorization": "Bearer wrong-9999"}
            ).status_code,
            call("GET", f"{base_url}/nothing-here?access_token=query-secret-0815").status_code,
        ]

    # THEN the server printed one line per request, our JSON access line, naming no query or token;
    # the function's answers carry their metrics (EMF) on that line, the authorizer's refusal has an
    # EMF line of its own, and the unknown path (the gateway's answer) none
    output = log_path.read_text()
    for secret in ("query-secret-0815", "log-test-token-4711", "wrong-9999", "access_token", "?"):
        assert secret not in output.split("Serving on", 1)[1], output
    served = output.split("Serving on", 1)[1].splitlines()[1:]
    lines = parse_json_lines("\n".join(served))
    access = [line for line in lines if line["message"] == "request"]
    assert [line["status"] for line in access] == statuses
    assert ["_aws" in line for line in access] == [True, True, False, False]
    (refusal,) = [line for line in lines if line["message"] != "request"]
    assert refusal["logger"] == "telehealth.metrics" and refusal["AuthorizerRefusals"] == 1
    assert len(served) == len(lines) == len(statuses) + 1, served


def raw_request(port: int, request: bytes) -> bytes:
    """Bytes sent as they are, answered until the server hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return b"".join(iter(lambda: connection.recv(65536), b""))


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    """An empty data directory where a clone keeps its own (``.data/``): inside the project, which
    chalice's autoreload watches."""
    data_dir = PROJECT_ROOT / ".data" / f"e2e-{uuid.uuid4().hex[:12]}"
    yield data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # .data/ itself, unless a developer's database is in it
        data_dir.parent.rmdir()


def newcomer_command(port: int) -> list[str]:
    """What the README has a newcomer type: ``.venv/bin/chalice local --port N``, nothing more."""
    return [os.path.join(os.path.dirname(sys.executable), "chalice"), "local", "--port", str(port)]


def run_command_with_autoreload(port: int) -> list[str]:
    """``python -m scripts.local_api`` with its defaults, chalice local's: autoreload on."""
    return [sys.executable, "-m", "scripts.local_api", "--port", str(port)]


@pytest.mark.parametrize(
    "command", [newcomer_command, run_command_with_autoreload], ids=["chalice-local", "local-api"]
)
def test_chalice_local_as_a_newcomer_types_it_keeps_every_promise(
    tmp_path: Path, fresh_data_dir: Path, command: Callable[[int], list[str]]
) -> None:
    # GIVEN a fresh clone's environment: nothing migrated, no DATABASE_URL nor REDIS_URL, and the
    # exact command the README names, with chalice's default autoreload (a parent and a child process,
    # the app loaded in a server thread of the child)
    env = {k: v for k, v in os.environ.items() if k not in (*NOT_ON_A_FRESH_CHECKOUT, "REDIS_URL")}
    env["TELEHEALTH_DATA_DIR"] = str(fresh_data_dir)
    port = free_port()
    log_path = tmp_path / "server.log"

    # WHEN it creates a patient, lists with a token in the query, fires the relay and asks for health,
    # the later requests after autoreload's next look at the project's files (every second)
    with running_server(command(port), port, env, log_path):
        base_url = f"http://127.0.0.1:{port}"
        created = call("POST", f"{base_url}/patients", without_phone(JOHN))
        time.sleep(AUTORELOAD_POLL_SECONDS + 0.5)
        listed = call("GET", f"{base_url}/patients?access_token=SECRETVALUE")
        relayed = requests.post(
            f"{base_url}/__scheduled/relay_notifications", headers={"X-Telehealth-Trigger": "1"}, timeout=10
        )
        health = requests.get(f"{base_url}/health", timeout=10)
        refused_by_the_server = raw_request(port, b"GET /health HTTP/3.0\r\n\r\n")

    # THEN the dev database was migrated by the server itself, writing it restarted nothing, the
    # token never reached the log, the scheduled functions' trigger route answered, and the HTTP
    # server's own refusal came in our shape
    output = log_path.read_text()
    assert created.status_code == 201, created.text
    assert listed.json()["field"] == "access_token"  # refused (an unknown parameter), and logged
    assert "SECRETVALUE" not in output, output
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["function"] == "relay_notifications"
    assert health.json()["database"] == "ok", health.text
    assert "Restarting local dev server" not in output, output
    assert "Traceback" not in output, output
    status_line, _, body = refused_by_the_server.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 505")
    assert json.loads(body)["code"] == "http_version_not_supported"


def modes_under(data_dir: Path) -> dict[str, int]:
    """The permission bits of ``data_dir`` ("." ) and of everything in it, by relative path."""
    paths = [data_dir, *data_dir.rglob("*")]
    return {str(path.relative_to(data_dir)): path.stat().st_mode & 0o777 for path in paths}


@SERVER_COMMANDS
def test_the_development_data_is_readable_by_its_owner_only(
    tmp_path: Path, command: Callable[[int], list[str]]
) -> None:
    # GIVEN a data directory made under the usual umask (022): every user of the machine reads it
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_FRESH_CHECKOUT}
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    (data_dir / "notes.txt").write_text("left by an older checkout")
    (data_dir / "notes.txt").chmod(0o644)
    env["TELEHEALTH_DATA_DIR"] = str(data_dir)
    port = free_port()

    # WHEN the server starts, migrating the development database, and writes a patient
    with running_server(command(port), port, env, tmp_path / "server.log"):
        created = call("POST", f"http://127.0.0.1:{port}/patients", without_phone(JOHN))
        assert created.status_code == 201, created.text
        modes = modes_under(data_dir)

    # THEN the directory is 0700 and every file in it, the database and its WAL files included, 0600
    assert {"telehealth.db", "telehealth.db-wal", "telehealth.db-shm", "notes.txt"} <= set(modes), modes
    assert modes == {".": 0o700, **{name: 0o600 for name in modes if name != "."}}


EVERY_ADDRESS = "0.0.0.0"  # noqa: S104 - the host these tests expect refused


@pytest.mark.parametrize(
    "command", [newcomer_command, run_command_with_autoreload], ids=["chalice-local", "local-api"]
)
def test_a_host_beyond_this_machine_is_refused_while_the_development_token_works(
    tmp_path: Path, command: Callable[[int], list[str]]
) -> None:
    # GIVEN a fresh clone's environment, where the published development token is accepted
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_FRESH_CHECKOUT}
    env["TELEHEALTH_DATA_DIR"] = str(tmp_path / "data")

    # WHEN the server is asked to listen on every address (autoreload on, as chalice local's default)
    result = run_in_a_session([*command(free_port()), "--host", EVERY_ADDRESS], env)

    # THEN it ends non-zero with one line naming both settings, having migrated nothing
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "API_HOST" in line and "API_TOKENS" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_a_host_beyond_this_machine_is_served_with_tokens_of_ones_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_FRESH_CHECKOUT}
    env.update(TELEHEALTH_DATA_DIR=str(tmp_path / "data"), API_TOKENS="clinic:a-token-of-our-own")
    port = free_port()

    with running_server([*newcomer_command(port), "--host", EVERY_ADDRESS], port, env, tmp_path / "log"):
        answered = requests.get(
            f"http://127.0.0.1:{port}/patients",
            headers={"Authorization": "Bearer a-token-of-our-own"},
            timeout=10,
        )

    assert answered.status_code == 200, answered.text
