"""Metrics from the worker (a real Celery worker's stdout), the scheduled functions and the rate
limit, each line validated against the EMF specification's structure."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import chalice.test
import pytest
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.bootstrap import reset_for_tests
from chalicelib.http.schedules import scheduled_event
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import utc_now
from tests.helpers.environment import configure_environment
from tests.helpers.metrics import emf_lines, emf_problems, emitted_metrics
from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import AUTH, JSON_AUTH, TEST_TOKEN
from tests.helpers.waiting import wait_until

UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


def worker_metrics(worker: WorkerProcess) -> list[dict[str, Any]]:
    lines = emf_lines(worker.log())
    for line in lines:
        assert emf_problems(line) == [], line
        assert not [value for value in DISTINCTIVE_FRAGMENTS if value in json.dumps(line).lower()]
    return lines


def create_patient(client: Any) -> str:
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))
    assert response.status_code == 201, response.body
    return str(response.json_body["notification_id"])


def test_the_worker_writes_a_line_per_delivery_with_commit_to_delivered_latency(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    metrics_on: None,
) -> None:
    # GIVEN a real worker, delivering on the first attempt
    worker = celery_worker()

    # WHEN a change is committed and delivered
    create_patient(client)

    # THEN the worker's stdout has one valid EMF line saying so, with the time since the commit
    (line,) = wait_until(lambda: worker_metrics(worker) or None, timeout=30)
    metrics = emitted_metrics([line])
    assert metrics["NotificationsDelivered"] == [1]
    (latency,) = metrics["DeliveryLatency"]
    assert 0 <= latency < 30_000
    assert line["Service"] == "telehealth-api-dev"


def test_retries_and_the_dead_letter_are_counted(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    metrics_on: None,
) -> None:
    # GIVEN every attempt fails, and one retry is allowed
    notifying_app(NOTIFY_FAILURE_RATE="1.0", NOTIFY_MAX_RETRIES="1")
    worker = celery_worker()

    # WHEN a change is committed
    create_patient(client)

    # THEN one line for the retried attempt, one for the dead letter
    lines = wait_until(lambda: (found := worker_metrics(worker)) and len(found) >= 2 and found, timeout=30)
    assert [emitted_metrics([line]) for line in lines] == [
        {"NotificationsRetried": [1]},
        {"NotificationsDeadLettered": [1]},
    ]


def test_a_relay_run_and_a_purge_run_each_write_a_valid_line(
    client: Any, notifying_app: Callable[..., None], metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a notification left pending by a Redis outage for five minutes
    notifying_app(REDIS_URL=UNREACHABLE_REDIS)
    patients.create_patient(UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings())
    with UnitOfWork() as uow:
        uow.session.execute(
            text("UPDATE notifications SET created_at = :created"),
            {"created": utc_now() - timedelta(minutes=5)},
        )
        uow.commit()
    capsys.readouterr()

    # WHEN EventBridge invokes the relay (Redis still down) and the purge
    client.lambda_.invoke("relay_notifications", scheduled_event("relay"))
    client.lambda_.invoke("purge_expired_records", scheduled_event("purge"))

    # THEN one line each: nothing handed off, the oldest pending five minutes old; nothing purged
    relay_line, purge_line = emf_lines(capsys.readouterr().out)
    assert emf_problems(relay_line) == [] and emf_problems(purge_line) == []
    relay = emitted_metrics([relay_line])
    assert relay["RelayHandedOff"] == [0]
    assert relay["OldestPendingAge"][0] >= 300
    assert "QueueLength" not in relay  # Redis cannot say: no made-up 0 for the worker's scaling
    assert relay["OldestQueuedAge"] == [0]  # none was handed off
    assert emitted_metrics([purge_line]) == {"IdempotencyKeysPurged": [0]}
    assert not [
        value for value in DISTINCTIVE_FRAGMENTS if value in json.dumps([relay_line, purge_line]).lower()
    ]


def test_a_429_is_counted_by_route(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    redis_url: str,
    metrics_on: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import app

    configure_environment(
        monkeypatch,
        DATABASE_URL=sqlite_url,
        API_TOKENS=f"suite:{TEST_TOKEN}",
        REDIS_URL=redis_url,
        RATE_LIMIT_PER_MINUTE="1",
        RATE_LIMIT_BURST="1",
        RATE_LIMIT_KEY_PREFIX=f"metrics-test:{uuid.uuid4().hex[:8]}:",
    )
    reset_for_tests()
    capsys.readouterr()
    try:
        # A stage .chalice/config.json does not name: dev's RATE_LIMIT_PER_MINUTE=0 would win.
        with chalice.test.Client(app, stage_name="metrics-test") as client:
            statuses = [client.http.get("/patients", headers=AUTH).status_code for _ in range(2)]
    finally:
        reset_for_tests()

    assert statuses == [200, 429]
    _allowed, refused = emf_lines(capsys.readouterr().out)
    assert emf_problems(refused) == []
    assert emitted_metrics([refused])["RateLimited"] == [1]
    assert (refused["Route"], refused["StatusClass"]) == ("/patients", "4xx")
