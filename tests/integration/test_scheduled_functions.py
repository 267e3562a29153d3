"""The scheduled functions (the relay, the retention purge) as EventBridge invokes them, and two at once.

``client.lambda_.invoke`` runs the app's registered function with a scheduled event, as Lambda
would; the concurrent runs are the services themselves, each thread with its own unit of work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.http.schedules import scheduled_event
from chalicelib.notifications.relay import relay_notifications
from chalicelib.patients import service as patients
from chalicelib.patients.idempotency import KEY_LIFETIME, purge_expired_keys
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import utc_now
from tests.helpers.databases import insert_idempotency_keys
from tests.helpers.patients import JANE, numbered, without_phone
from tests.helpers.waiting import run_together

JANE_WITHOUT_PHONE = without_phone(JANE)  # an email notification only
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


def create_pending(count: int) -> list[str]:
    """Notifications whose hand-off failed (Redis unreachable), made overdue for the relay."""
    ids = [
        patients.create_patient(
            UnitOfWork(), numbered(JANE_WITHOUT_PHONE, i), settings=bootstrap.patient_settings()
        ).notification_id
        for i in range(count)
    ]
    with UnitOfWork() as uow:
        uow.session.execute(
            text("UPDATE notifications SET next_attempt_at = :past, created_at = :created"),
            {"past": utc_now() - timedelta(seconds=1), "created": utc_now() - timedelta(minutes=5)},
        )
        uow.commit()
    return [str(notification_id) for notification_id in ids]


def statuses() -> list[str]:
    with UnitOfWork() as uow:
        return list(uow.session.execute(text("SELECT status FROM notifications")).scalars())


def add_keys(*, expired: int, fresh: int) -> None:
    now = utc_now()
    rows = [
        {
            "key": f"k{i}",
            "created": now - KEY_LIFETIME - timedelta(minutes=1),
            "expires": now - timedelta(minutes=1),
        }
        for i in range(expired)
    ]
    rows += [{"key": f"f{i}", "created": now, "expires": now + KEY_LIFETIME} for i in range(fresh)]
    insert_idempotency_keys(rows)


def remaining_keys() -> list[str]:
    with UnitOfWork() as uow:
        return sorted(uow.session.execute(text("SELECT key FROM idempotency_keys")).scalars())


def test_the_relay_function_reports_what_it_handed_off_and_the_oldest_pending_age(
    client: Any, notifying_app: Callable[..., None]
) -> None:
    # GIVEN two notifications left pending by a Redis outage, overdue
    notifying_app(REDIS_URL=UNREACHABLE_REDIS)
    create_pending(2)

    # WHEN EventBridge invokes the relay while Redis is still down, then once it is back
    during = client.lambda_.invoke("relay_notifications", scheduled_event("relay")).payload
    notifying_app()
    with UnitOfWork() as uow:  # overdue again: the failed run postponed them by the relay delay
        uow.session.execute(text("UPDATE notifications SET next_attempt_at = :past"), {"past": utc_now()})
        uow.commit()
    after = client.lambda_.invoke("relay_notifications", scheduled_event("relay")).payload

    # THEN the first handed off nothing and saw them waiting five minutes; the second handed both off
    assert during["handed_off"] == 0
    assert during["oldest_pending_age_seconds"] >= 300
    assert during["queue_length"] is None  # Redis down: unknown, not 0
    # No worker runs: both wait in the worker's queue, committed five minutes ago
    assert after.pop("oldest_queued_age_seconds") >= 300
    assert after == {"handed_off": 2, "oldest_pending_age_seconds": None, "queue_length": 2}
    assert statuses() == ["queued", "queued"]


def test_the_purge_function_deletes_keys_past_24_hours_and_nothing_younger(client: Any) -> None:
    add_keys(expired=3, fresh=2)

    answer = client.lambda_.invoke("purge_expired_records", scheduled_event("purge")).payload

    assert answer == {"idempotency_keys_purged": 3}
    assert remaining_keys() == ["f0", "f1"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_relay_runs_at_once_hand_each_notification_off_once(
    notifying_app: Callable[..., None],
) -> None:
    # GIVEN many overdue notifications, in more than one of the relay's batches' worth of rows locked
    notifying_app(REDIS_URL=UNREACHABLE_REDIS)
    ids = create_pending(60)
    handed: list[str] = []
    lock = threading.Lock()

    def hand_off(notification_id: str) -> bool:
        time.sleep(0.002)  # a broker round trip: the two runs overlap
        with lock:
            handed.append(notification_id)
        return True

    # WHEN two relay runs start at the same moment, each in its own transaction
    runs = run_together(
        2,
        lambda _: relay_notifications(
            UnitOfWork(), hand_off=hand_off, relay_delay=bootstrap.settings().notifications.relay_delay
        ),
    )

    # THEN neither failed, together they handed each notification off exactly once
    assert sum(run.handed_off for run in runs) == len(ids)
    assert sorted(handed) == sorted(ids)
    assert set(statuses()) == {"queued"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_purges_at_once_delete_each_expired_key_once(configured_app: str) -> None:
    add_keys(expired=200, fresh=5)

    purged = run_together(2, lambda _: purge_expired_keys(UnitOfWork()))

    assert sum(purged) == 200
    assert remaining_keys() == [f"f{i}" for i in range(5)]
