"""A database connection lost under a request or a delivery (an RDS failover, RDS Proxy recycling
its connections): run again once when nothing was committed, 503 ``database_unavailable`` when a
COMMIT's outcome is unknown or the loss persists, never a 500. PostgreSQL, whose server processes
a test can end (``pg_terminate_backend``) at the statement it chooses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.notifications import broker
from chalicelib.notifications.delivery import DeliveryOutcome, deliver_notification
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine
from tests.helpers.api import assert_error
from tests.helpers.databases import COMMIT, cut_connection
from tests.helpers.patients import DISTINCTIVE_PATIENT
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

ANN = {"name": "Ann", "email": "ann@example.com"}


def create(client: Any, headers: dict[str, str] | None = None) -> Any:
    return client.http.post("/patients", headers={**JSON_AUTH, **(headers or {})}, body=json.dumps(ANN))


def audit_statuses(action: str) -> list[int]:
    with get_engine().connect() as connection:
        rows = connection.execute(
            text("SELECT status FROM audit_events WHERE action = :action ORDER BY id"), {"action": action}
        )
        return [status for (status,) in rows]


def patients_stored() -> list[tuple[int, str, int]]:
    with get_engine().connect() as connection:
        rows = connection.execute(text("SELECT id, name, version FROM patients ORDER BY id"))
        return [(patient_id, name, version) for patient_id, name, version in rows]


def assert_database_unavailable(response: Any) -> None:
    assert_error(response, 503, "database_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_a_create_cut_before_its_insert_runs_again_and_makes_one_patient(client: Any) -> None:
    # GIVEN the create's connection ends just before its INSERT of the patient
    with cut_connection("INSERT INTO patients") as cut:
        # WHEN the client creates a patient
        response = create(client)

    # THEN nothing had been committed, so it ran once more on a new connection: one patient, one row
    assert len(cut) == 1
    assert response.status_code == 201, response.body
    assert [name for _, name, _ in patients_stored()] == ["Ann"]
    assert audit_statuses("patient.create") == [201]
    assert client.http.get("/patients", headers=AUTH).json_body["total"] == 1


def test_an_update_cut_before_its_update_is_applied_once(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"

    with cut_connection("UPDATE patients") as cut:
        response = client.http.put(path, headers=JSON_AUTH, body=json.dumps({"name": "Renamed"}))

    assert len(cut) == 1
    assert response.status_code == 200, response.body
    assert response.json_body["patient"]["name"] == "Renamed"
    assert response.headers["ETag"].endswith('-2"')
    assert [(name, version) for _, name, version in patients_stored()] == [("Renamed", 2)]
    assert audit_statuses("patient.update") == [200]


def test_a_delete_cut_before_its_delete_deletes_once(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"

    with cut_connection("DELETE FROM patients") as cut:
        response = client.http.delete(path, headers=AUTH)

    assert len(cut) == 1
    assert response.status_code == 200, response.body
    assert patients_stored() == []
    assert audit_statuses("patient.delete") == [200]


def test_a_create_cut_at_its_commit_is_a_503_and_its_retry_with_the_key_makes_one_patient(
    client: Any,
) -> None:
    key = {"Idempotency-Key": "cut-at-commit-1"}

    # GIVEN the create's connection ends as its COMMIT is sent: the server cannot know whether it took
    with cut_connection(COMMIT) as cut:
        first = create(client, key)

    # THEN it answers 503 database_unavailable with Retry-After, and does not run again by itself
    assert len(cut) == 1
    assert_database_unavailable(first)
    # ... and the client's retry with its Idempotency-Key leaves exactly one patient
    retry = create(client, key)
    assert retry.status_code == 201, retry.body
    assert create(client, key).headers.get("Idempotent-Replayed") == "true"
    assert [name for _, name, _ in patients_stored()] == ["Ann"]
    assert audit_statuses("patient.create") == [503, 201]


def test_a_write_cut_twice_is_a_503_never_a_500_nor_a_third_run(client: Any) -> None:
    with cut_connection("INSERT INTO patients", times=2) as cut:
        response = create(client)

    assert len(cut) == 2
    assert_database_unavailable(response)
    assert patients_stored() == []
    assert audit_statuses("patient.create") == [503]


def test_a_read_cut_at_its_statement_reads_again_and_is_recorded_once(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"

    # The read, its audit row and its disclosure are one statement (WITH read_rows …)
    with cut_connection("WITH") as cut:
        response = client.http.get(path, headers=AUTH)

    assert len(cut) == 1
    assert response.status_code == 200, response.body
    assert audit_statuses("patient.read") == [200]


def test_a_list_cut_at_its_statement_reads_again_and_is_recorded_once(client: Any) -> None:
    create(client)

    with cut_connection("WITH") as cut:
        response = client.http.get("/patients", headers=AUTH)

    assert len(cut) == 1
    assert response.status_code == 200, response.body
    assert response.json_body["total"] == 1
    assert audit_statuses("patient.list") == [200]


def test_a_read_cut_twice_is_a_503_database_unavailable_and_recorded(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"

    with cut_connection("WITH", times=2) as cut:
        response = client.http.get(path, headers=AUTH)

    assert len(cut) == 2
    assert_database_unavailable(response)
    assert audit_statuses("patient.read") == [503]


def test_the_wrappers_audit_write_cut_before_it_runs_is_written_once(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"
    stale = {**JSON_AUTH, "If-Match": '"p1-9"'}

    # GIVEN a refusal (412), recorded by the route wrapper's own audit INSERT, whose connection ends
    with cut_connection("INSERT INTO audit_events") as cut:
        response = client.http.put(path, headers=stale, body=json.dumps({"name": "Late"}))

    # THEN the row is written on a new connection, once, and the answer is the refusal, not a 503
    assert len(cut) == 1
    assert response.status_code == 412, response.body
    assert audit_statuses("patient.update") == [412]


def test_the_wrappers_audit_write_cut_twice_fails_closed(client: Any) -> None:
    path = f"/patients/{create(client).json_body['patient']['id']}"
    stale = {**JSON_AUTH, "If-Match": '"p1-9"'}

    with cut_connection("INSERT INTO audit_events", times=2):
        response = client.http.put(path, headers=stale, body=json.dumps({"name": "Late"}))

    # Fails closed: no answer without its row, and the client learns to retry shortly
    assert_database_unavailable(response)
    assert audit_statuses("patient.update") == []


def test_a_delivery_cut_while_recording_it_was_sent_records_it(configured_app: str) -> None:
    # GIVEN a notification whose delivery loses its connection after the provider accepted it
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id
    assert notification_id is not None

    def marks_delivered(statement: str) -> bool:
        return statement.startswith("UPDATE notifications") and "delivered_at" in statement

    with cut_connection(marks_delivered) as cut:
        outcome = deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)

    # THEN the outcome is written on a new connection: delivered now, not claimed until the claim expires
    assert len(cut) == 1
    assert outcome is DeliveryOutcome.DELIVERED
    with get_engine().connect() as connection:
        status, attempts = connection.execute(
            text("SELECT status, attempts FROM notifications WHERE id = :id"), {"id": notification_id}
        ).one()
    assert (status, attempts) == ("delivered", 1)


def test_a_worker_that_cannot_reach_the_database_retries_the_task(
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # GIVEN a worker whose database refuses every connection (no server behind its socket directory)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@/telehealth?host={tmp_path}")
    celery_worker()

    # WHEN it is handed a notification
    notification_id = str(uuid.uuid4())
    assert broker.hand_off(notification_id)

    # THEN the task is retried later (nothing was claimed), not failed for good
    wait_until(lambda: broker.task_states([notification_id])[notification_id] == "RETRY", timeout=20)
