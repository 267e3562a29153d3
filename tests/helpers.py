"""What several test modules share: tokens, request helpers, assertions and processes.

Fixtures live in tests/conftest.py; everything a test module imports from the suite comes from
here, and no test module imports another test module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import text

from chalicelib.bootstrap import reset_for_tests
from chalicelib.config.settings import PROJECT_ROOT, Settings, load_settings
from chalicelib.config.tokens import DEVELOPMENT_TOKEN
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine
from scripts.api_process import HOST, free_port
from scripts.process_tree import descendants, is_alive, kill_all

# --- Tokens and headers ------------------------------------------------------------------------

TEST_TOKEN = "test-token-for-suite"
# The suite's token holds every scope; tests of scopes configure narrower ones.
SUITE_TOKENS = f"suite[patients:read patients:write audit:read]:{TEST_TOKEN}"
OTHER_TOKEN = "another-token-for-suite"  # principal "other", with the two_principals fixture
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}


# --- Databases ----------------------------------------------------------------------------------


def create_postgres_database(server_url: str) -> str:
    """A new, empty database (no tables) on the PostgreSQL server at ``server_url``; its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"telehealth_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _libpq(server_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- Outages ------------------------------------------------------------------------------------

# Each write to the audit table fails, as in an outage; the schema stays whole (a missing table is
# another answer: schema_not_migrated).
AUDIT_OFFLINE_SQLITE = [
    f"CREATE TRIGGER audit_events_offline_{event} BEFORE {event} ON audit_events"
    " BEGIN SELECT RAISE(ABORT, 'audit trail offline'); END"
    for event in ("INSERT", "UPDATE")
]
AUDIT_OFFLINE_POSTGRESQL = [
    "CREATE FUNCTION audit_events_offline() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION 'audit trail offline'; END $$",
    "CREATE TRIGGER audit_events_offline BEFORE INSERT OR UPDATE ON audit_events"
    " FOR EACH ROW EXECUTE FUNCTION audit_events_offline()",
]
AUDIT_ONLINE_SQLITE = [f"DROP TRIGGER audit_events_offline_{event}" for event in ("INSERT", "UPDATE")]
AUDIT_ONLINE_POSTGRESQL = [
    "DROP TRIGGER audit_events_offline ON audit_events",
    "DROP FUNCTION audit_events_offline()",
]


@contextmanager
def audit_trail_offline() -> Iterator[None]:
    """Make every write to the audit table fail until the block ends."""
    sqlite = get_engine().dialect.name == "sqlite"
    with get_engine().begin() as connection:
        for statement in AUDIT_OFFLINE_SQLITE if sqlite else AUDIT_OFFLINE_POSTGRESQL:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with get_engine().begin() as connection:
            for statement in AUDIT_ONLINE_SQLITE if sqlite else AUDIT_ONLINE_POSTGRESQL:
                connection.execute(text(statement))


def load_dev_settings(env: dict[str, str]) -> Settings:
    """``load_settings`` under the dev stage, unless ``env`` names another: APP_STAGE has no default."""
    return load_settings({"APP_STAGE": "dev", **env})


def configure_environment(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Point the process's settings at ``env`` (APP_STAGE dev unless given); forget cached engines."""
    for key in ("DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in os.environ:
        if key.startswith(("NOTIFY_", "REDIS_")):
            monkeypatch.delenv(key, raising=False)
    for key, value in {"APP_STAGE": "dev", **env}.items():
        monkeypatch.setenv(key, value)
    reset_for_tests()


# For tests whose requests never reach the database: once, on SQLite, instead of once per database.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --- Requests and answers through chalice.test.Client ------------------------------------------

JOHN = {"name": "John Doe", "email": "john.doe@example.com", "phone": "123-456-7890"}


def post(client: Any, body: Any, headers: dict[str, str] = JSON_AUTH) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post("/patients", headers=headers, body=raw)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.body
    body = response.json_body
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field
    assert "Traceback" not in response.body.decode()


def app_routes() -> dict[tuple[str, str], bool]:
    """Every route of app.py as (path, METHOD), mapped to whether the bearer authorizer guards it."""
    from app import app

    return {
        (path, method): entry.authorizer is not None
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


# --- The OpenAPI document ------------------------------------------------------------------------

DOCUMENT_URI = "urn:telehealth:openapi"


def get_document(client: Any) -> dict[str, Any]:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def schema_validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry)


def answer_schema(document: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator:
    escaped = path.replace("~", "~0").replace("/", "~1")
    assert str(status) in document["paths"][path][method]["responses"], (path, method, status)
    return schema_validator(
        document, f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    )


def assert_documented(document: dict[str, Any], path: str, method: str, response: Any) -> None:
    errors = list(answer_schema(document, path, method, response.status_code).iter_errors(response.json_body))
    assert not errors, (path, method, response.status_code, [e.message for e in errors])


# --- Waiting, concurrency, logs ------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; fail with a clear message after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def run_together(count: int, request: Any) -> list[Any]:
    """Start ``count`` calls of ``request(i)`` at the same moment and collect their results."""
    barrier = threading.Barrier(count)

    def call(i: int) -> Any:
        barrier.wait()
        return request(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@contextmanager
def relay_running(app: Any, every: float = 0.5) -> Iterator[None]:
    """The app's relay, a scheduled function, invoked with EventBridge's event every ``every`` seconds
    in a thread of this process until the block ends (what the local server's timer does)."""
    from chalicelib.http.schedules import scheduled_event

    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            app.handler_map["relay_notifications"](scheduled_event("relay_notifications"), None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def call_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    """One request to a server of the test over a real socket: its status and decoded JSON answer,
    error statuses included (a body goes as JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of ``text`` that are JSON objects, decoded."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


def insert_idempotency_keys(rows: list[dict[str, Any]]) -> None:
    """Key rows of principal ``clinic`` as a create would leave them: ``key``, ``created``, ``expires``."""
    with UnitOfWork() as uow:
        uow.session.execute(
            text(
                "INSERT INTO idempotency_keys (principal, key, request_sha256, patient_id, result,"
                " created_at, expires_at) VALUES ('clinic', :key, 'x', NULL, NULL, :created, :expires)"
            ),
            rows,
        )
        uow.commit()


# --- Processes: a Celery worker, chalice local ---------------------------------------------------


def server_environment(database_url: str) -> dict[str, str]:
    """The test's environment for a server, with a shell APP_STAGE that config.json must override.

    Without API_TOKENS only the dev stage accepts the development token, so a
    request that passes with it shows the stage's APP_STAGE=dev was applied.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "API_TOKEN_SHA256", "REDIS_URL")}
    return {**env, "DATABASE_URL": database_url, "APP_STAGE": "set-by-the-shell"}


class WorkerProcess:
    """``celery -A local_worker worker`` in a subprocess, on the test's settings; its log in a file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WorkerProcess:
        command = [sys.executable, "-m", "celery", "-A", "local_worker", "worker", "--pool=threads"]
        command += ["--concurrency=4", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", f"--hostname=test-{uuid.uuid4().hex[:8]}@%h"]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # A session of its own: kill() must also reach the processes the worker forks.
            self.process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(lambda: " ready." in self.log()[offset:] or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and everything it started, as a crash of its machine would."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def json_lines(self) -> list[dict[str, Any]]:
        """The worker's log lines (ours and Celery's); the banner Celery prints is not one of them."""
        return parse_json_lines(self.log())

    def sent_lines(self, notification_id: str) -> list[dict[str, Any]]:
        """The log provider's line for each channel delivered."""
        return [
            line
            for line in self.json_lines()
            if line["message"] == "notification sent" and line.get("notification_id") == notification_id
        ]


CHALICE_LOCAL_STARTUP_TIMEOUT_S = 30


@contextmanager
def chalice_local(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real ``chalice local`` on a free port with ``env`` added to this environment; yield its base URL."""
    port = free_port()
    chalice = str(Path(sys.executable).with_name("chalice"))
    command = [
        chalice,
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--stage",
        "dev",
        "--no-autoreload",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_serving(server, base_url, log_path)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_serving(server: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + CHALICE_LOCAL_STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"chalice local exited: {log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(
        f"chalice local did not answer in {CHALICE_LOCAL_STARTUP_TIMEOUT_S}s: {log_path.read_text()}"
    )


# --- The local stack: `make run` ------------------------------------------------------------------

RUN_STACK = [sys.executable, "-m", "scripts.run_stack"]
# What a developer's shell or the suite may hold, which a fresh laptop does not (and which
# `make run AWS=emulated` supplies from the emulated AWS).
NOT_ON_A_LAPTOP = (
    "DATABASE_URL",
    "REDIS_URL",
    "API_TOKENS",
    "API_TOKEN_SHA256",
    "APP_STAGE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "NOTIFY_PROVIDER",
)


def stack_env(tmp_path: Path, port: int, workers: int, **settings: str) -> dict[str, str]:
    """The stack's environment: this one less NOT_ON_A_LAPTOP, its data under ``tmp_path``, ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_ON_A_LAPTOP}
    env.update(
        API_PORT=str(port),
        TELEHEALTH_DATA_DIR=str(tmp_path / "data"),
        WORKER_PROCESSES=str(workers),
        NOTIFY_FAILURE_RATE="0",
        **settings,
    )
    return env


class Stack:
    """``command`` (``scripts.run_stack`` or ``make run``) in a session of its own, as a terminal gives:
    Ctrl-C reaches its whole process group. Its output in ``log_path``."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.base_url, self.log_path = f"http://{HOST}:{env['API_PORT']}", log_path
        self.seen_pids: set[int] = set()
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def processes(self) -> list[int]:
        """Every process below the one started (remembered, to check later that none outlived it)."""
        pids = descendants(self.process.pid)
        self.seen_pids.update(pids)
        return pids

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str = DEVELOPMENT_TOKEN
    ) -> tuple[int, Any]:
        return call_json(method, self.base_url + path, body, {"Authorization": f"Bearer {token}"}, timeout=10)

    def serving(self, token: str = DEVELOPMENT_TOKEN) -> bool:
        """Whether the API answers; fails the test with the stack's output if the stack has ended."""
        assert self.process.poll() is None, self.log_path.read_text(errors="replace")
        with contextlib.suppress(OSError):
            return self.call("GET", "/health", token=token)[0] == 200
        return False

    def lines(self, process_name: str) -> list[dict[str, Any]]:
        """The JSON lines one of honcho's processes wrote (honcho prefixes "HH:MM:SS name | ")."""
        marker = f" {process_name} "
        text = self.log_path.read_text(errors="replace")
        ours = [line.split("| ", 1)[1] for line in text.splitlines() if marker in line and "| " in line]
        return parse_json_lines("\n".join(ours))

    def kill(self) -> None:
        """Kill whatever is left of the stack, every process it was seen to start included."""
        if self.process.poll() is None:
            self.processes()
        kill_all([pid for pid in self.seen_pids if is_alive(pid)], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


# --- Cold start ------------------------------------------------------------------------------------

# Modules a cold start must not import: each loads on the first request that needs it.
LOADED_ON_FIRST_USE = (
    "celery",
    "kombu",
    "redis",
    "boto3",
    "botocore",
    "alembic",
    "email_validator",
    "phonenumbers",
)


def heavy_modules(modules: list[str]) -> list[str]:
    """The names in ``modules`` (as in ``sys.modules``) that belong to LOADED_ON_FIRST_USE's packages."""
    return sorted(name for name in modules if name.split(".")[0] in LOADED_ON_FIRST_USE)


# --- Metrics: CloudWatch Embedded Metric Format ----------------------------------------------------

# The structure the EMF specification gives a line (docs.aws.amazon.com, "Specification: Embedded
# metric format"): what JSON Schema can say. ``emf_problems`` adds the cross-references it cannot.
EMF_UNITS = (
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes"),
    *("Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count"),
    *("Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second"),
    *("Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second"),
    *("Count/Second", "None"),
)
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},  # milliseconds since the epoch
                "CloudWatchMetrics": {"type": "array", "items": {"$ref": "#/$defs/directive"}},
            },
        }
    },
    "$defs": {
        "directive": {
            "type": "object",
            "required": ["Namespace", "Dimensions", "Metrics"],
            "properties": {
                "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                "Dimensions": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "maxItems": 30,
                        "items": {"type": "string", "minLength": 1, "maxLength": 250},
                    },
                },
                "Metrics": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["Name"],
                        "properties": {
                            "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Unit": {"enum": list(EMF_UNITS)},
                            "StorageResolution": {"enum": [1, 60]},
                        },
                    },
                },
            },
        }
    },
}


def emf_problems(line: dict[str, Any]) -> list[str]:
    """What is wrong with ``line`` as an EMF line: the schema's errors, then every dimension a
    directive names that is not a top-level string member, every metric not a top-level number
    (or array of at most 100 numbers)."""
    problems = [error.message for error in Draft202012Validator(EMF_SCHEMA).iter_errors(line)]
    if problems:
        return problems
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for name in {name for dimension_set in directive["Dimensions"] for name in dimension_set}:
            if not isinstance(line.get(name), str):
                problems.append(f"dimension {name} is not a top-level string member")
        for metric in directive["Metrics"]:
            value = line.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if not (numbers and 0 < len(values) <= 100):
                problems.append(f"metric {metric['Name']} is not a top-level number or list of numbers")
    return problems


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF lines (those with an ``_aws`` member) among the JSON lines of ``text``."""
    return [line for line in parse_json_lines(text) if "_aws" in line]


def emitted_metrics(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Metric name -> every value the EMF ``lines`` hold for it."""
    values: dict[str, list[float]] = {}
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                values.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return values
