"""AUDIT_READ_COMMIT: a read's audit row commits without waiting for the WAL flush ("async",
the default), or waits as every change does ("durable"). Either way it is committed, and
visible to every other connection, before the answer leaves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import chalice.test
import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from chalicelib.audit.queries import AuditEventRepository
from chalicelib.audit.recording import audit_row
from chalicelib.config.environment import ConfigurationError
from chalicelib.storage.database import get_engine
from tests.helpers.environment import configure_environment, load_dev_settings
from tests.helpers.patients import JANE, without_phone
from tests.helpers.tokens import JSON_AUTH, SUITE_TOKENS

SKIPS_THE_FLUSH_WAIT = "set_config"


def test_the_setting_defaults_to_async_and_takes_durable() -> None:
    assert load_dev_settings({}).audit_read_commit == "async"
    assert load_dev_settings({"AUDIT_READ_COMMIT": " Durable "}).audit_read_commit == "durable"
    with pytest.raises(ConfigurationError, match="AUDIT_READ_COMMIT must be one of async, durable"):
        load_dev_settings({"AUDIT_READ_COMMIT": "off"})


def test_the_flush_wait_is_skipped_for_the_rows_own_transaction_only(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    configure_environment(monkeypatch, DATABASE_URL=postgres_url)
    row = audit_row(principal="suite", action="patient.read", patient_id=1, status=200, request_id="r")
    with get_engine().connect() as connection:
        # WHEN the row is written without the wait, inside a transaction we keep open to look
        with connection.begin() as transaction:
            AuditEventRepository(connection).add(row, wait_for_flush=False)
            # THEN its transaction commits without waiting for the flush
            assert connection.scalar(text("SHOW synchronous_commit")) == "off"
            transaction.rollback()
        # AND the next transaction on the connection waits again (the server's setting), as do
        # rows written the usual way
        with connection.begin() as transaction:
            assert connection.scalar(text("SHOW synchronous_commit")) == "on"
            AuditEventRepository(connection).add(row)
            assert connection.scalar(text("SHOW synchronous_commit")) == "on"
            transaction.rollback()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch, postgres_url: str, request: Any) -> Iterator[list[str]]:
    """The API on PostgreSQL in the AUDIT_READ_COMMIT mode of the test's parameter; the SQL it sends."""
    configure_environment(
        monkeypatch, DATABASE_URL=postgres_url, API_TOKENS=SUITE_TOKENS, AUDIT_READ_COMMIT=request.param
    )
    sent: list[str] = []
    engine = get_engine()

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield sent
    event.remove(engine, "before_cursor_execute", note)


def requests_and_statements(client: chalice.test.Client, sent: list[str]) -> dict[str, list[str]]:
    def statements_of(call: Any, status: int) -> list[str]:
        before = len(sent)
        assert call().status_code == status
        return sent[before:]

    body = json.dumps(without_phone(JANE))
    created = client.http.post("/patients", headers=JSON_AUTH, body=body)
    assert created.status_code == 201
    path = f"/patients/{json.loads(created.body)['patient']['id']}"
    change = json.dumps({"name": "Jane Doe"})
    return {
        "read": statements_of(lambda: client.http.get(path, headers=JSON_AUTH), 200),
        "list": statements_of(lambda: client.http.get("/patients", headers=JSON_AUTH), 200),
        "missing": statements_of(lambda: client.http.get("/patients/999999", headers=JSON_AUTH), 404),
        "update": statements_of(lambda: client.http.put(path, headers=JSON_AUTH, body=change), 200),
        "refused change": statements_of(
            lambda: client.http.put("/patients/999999", headers=JSON_AUTH, body=change), 404
        ),
        "delete": statements_of(lambda: client.http.delete(path, headers=JSON_AUTH), 200),
    }


def committed_actions(postgres_url: str) -> list[str]:
    libpq = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as other:
        rows = other.execute("SELECT action FROM audit_events WHERE principal = 'suite' ORDER BY id")
        return [row[0] for row in rows.fetchall()]


@pytest.mark.parametrize(
    ("statements", "reads_skip_the_wait"), [("async", True), ("durable", False)], indirect=["statements"]
)
def test_only_reads_skip_the_flush_wait_and_only_in_async_mode(
    statements: list[str], reads_skip_the_wait: bool, postgres_url: str
) -> None:
    from app import app

    before = committed_actions(postgres_url)
    with chalice.test.Client(app, stage_name="dev") as client:
        # WHEN a patient is read, listed, looked for in vain, changed, refused a change and deleted
        sent = requests_and_statements(client, statements)

    # THEN each read's audit row skips the wait for the flush in async mode, never in durable mode
    for operation in ("read", "list", "missing"):
        skipping = [s for s in sent[operation] if SKIPS_THE_FLUSH_WAIT in s]
        assert len(skipping) == (1 if reads_skip_the_wait else 0), sent[operation]
        assert "audit_events" in skipping[0] if skipping else True
    # AND nothing a change or a refused change sends ever does
    for operation in ("update", "refused change", "delete"):
        assert not [s for s in sent[operation] if SKIPS_THE_FLUSH_WAIT in s], sent[operation]
    # AND every row is committed, seen from another connection once the answers are given
    assert committed_actions(postgres_url)[len(before) :] == [
        "patient.create",
        "patient.read",
        "patient.list",
        "patient.read",
        "patient.update",
        "patient.update",
        "patient.delete",
    ]
