"""The relay against real Redis: overdue notifications are handed off again, once per run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.http.schedules import scheduled_event
from chalicelib.notifications import broker
from chalicelib.notifications.relay import relay_notifications
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import utc_now
from tests.helpers.metrics import emf_lines, emf_problems, emitted_metrics
from tests.helpers.patients import JANE, numbered, without_phone

JANE_WITHOUT_PHONE = without_phone(JANE)  # an email notification only


def make_overdue() -> None:
    with UnitOfWork() as uow:
        uow.session.execute(
            text("UPDATE notifications SET next_attempt_at = :past WHERE next_attempt_at IS NOT NULL"),
            {"past": utc_now() - timedelta(seconds=1)},
        )
        uow.commit()


def statuses() -> dict[str, str]:
    with UnitOfWork() as uow:
        rows = uow.session.execute(text("SELECT id, status FROM notifications")).all()
    return {notification_id: status for notification_id, status in rows}


def queued_ids(redis_url: str) -> list[str]:
    with redis.Redis.from_url(redis_url) as broker:
        return [json.loads(raw)["headers"]["id"] for raw in broker.lrange("celery", 0, -1)]


def test_notifications_left_pending_by_an_outage_are_handed_off_by_the_relay(
    notifying_app: Callable[..., None], redis_url: str
) -> None:
    # GIVEN changes committed while Redis was unreachable
    notifying_app(REDIS_URL="redis://127.0.0.1:9/0")
    ids = [
        patients.create_patient(
            UnitOfWork(), numbered(JANE_WITHOUT_PHONE, i), settings=bootstrap.patient_settings()
        ).notification_id
        for i in range(3)
    ]
    assert set(statuses().values()) == {"pending"}

    # WHEN Redis is back and they are overdue
    notifying_app(REDIS_URL=redis_url)
    assert (
        relay_notifications(
            UnitOfWork(), relay_delay=bootstrap.settings().notifications.relay_delay
        ).handed_off
        == 0
    )  # not overdue yet
    make_overdue()
    handed_off = relay_notifications(
        UnitOfWork(), relay_delay=bootstrap.settings().notifications.relay_delay
    ).handed_off
    again = relay_notifications(
        UnitOfWork(), relay_delay=bootstrap.settings().notifications.relay_delay
    ).handed_off

    # THEN each is handed off once, and queued
    assert (handed_off, again) == (3, 0)
    assert sorted(queued_ids(redis_url)) == sorted(ids)
    assert set(statuses().values()) == {"queued"}


def test_the_relay_releases_an_expired_claim_and_leaves_finished_ones_alone(
    notifying_app: Callable[..., Any], redis_url: str
) -> None:
    abandoned = patients.create_patient(
        UnitOfWork(), JANE_WITHOUT_PHONE, settings=bootstrap.patient_settings()
    ).notification_id
    now = utc_now()
    with UnitOfWork() as uow:
        uow.notifications.claim(abandoned, now=now, until=now - timedelta(seconds=1))  # its worker died
        uow.commit()
    finished = patients.create_patient(
        UnitOfWork(),
        {**JANE_WITHOUT_PHONE, "email": "done@example.com"},
        settings=bootstrap.patient_settings(),
    ).notification_id
    with UnitOfWork() as uow:
        uow.session.execute(
            text("UPDATE notifications SET status = 'delivered', next_attempt_at = NULL WHERE id = :id"),
            {"id": finished},
        )
        uow.commit()
    make_overdue()

    assert (
        relay_notifications(
            UnitOfWork(), relay_delay=bootstrap.settings().notifications.relay_delay
        ).handed_off
        == 1
    )
    assert statuses() == {abandoned: "queued", finished: "delivered"}


def test_a_relay_run_reports_the_worker_queue_length_redis_holds(
    client: Any,
    notifying_app: Callable[..., None],
    redis_url: str,
    metrics_on: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN three notifications handed off while no worker runs, and a message sent with a priority
    # (kombu keeps those under a key of their own)
    for i in range(3):
        patients.create_patient(
            UnitOfWork(), numbered(JANE_WITHOUT_PHONE, i), settings=bootstrap.patient_settings()
        )
    broker.get_celery_client().send_task(broker.SEND_NOTIFICATION_TASK, args=["other"], priority=9)
    capsys.readouterr()

    # WHEN EventBridge invokes the relay
    answer = client.lambda_.invoke("relay_notifications", scheduled_event("relay")).payload

    # THEN it counts every waiting message, as its EMF line says, and Redis agrees
    with redis.Redis.from_url(redis_url) as store:
        lists = [key for key in store.keys(f"{broker.WORKER_QUEUE}*") if store.type(key) == b"list"]
        in_redis = sum(store.llen(key) for key in lists)
    assert len(lists) == 2  # the queue's own key and its priority 9 key
    assert answer["queue_length"] == in_redis == 4
    (line,) = emf_lines(capsys.readouterr().out)
    assert emf_problems(line) == []
    assert emitted_metrics([line])["QueueLength"] == [4]
