"""The scheduled functions from the unzipped artifact, as EventBridge invokes them in Lambda.

Each container is a cold Lambda process of one function (``_HANDLER`` names it, as Lambda does)
with only the artifact on its import path, against real PostgreSQL and Redis; the effect is
read in the database and in the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.patients import service as patients
from chalicelib.patients.idempotency import KEY_LIFETIME
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import utc_now
from deploy.lambda_events import schedule_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment
from tests.helpers.cold_start import heavy_modules
from tests.helpers.databases import insert_idempotency_keys
from tests.helpers.patients import JANE, numbered, without_phone
from tests.helpers.waiting import run_together

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

RELAY = "relay_notifications"
PURGE = "purge_expired_records"


def function_environment(function: str, database_url: str, **variables: str) -> dict[str, str]:
    # The prod artifact under the dev stage's settings: the code is the same, only these differ.
    return lambda_environment(
        APP_STAGE="dev",
        DATABASE_URL=database_url,
        AWS_LAMBDA_FUNCTION_NAME=f"telehealth-api-prod-{function}",
        _HANDLER=f"app.{function}",
        **variables,
    )


@pytest.fixture
def relay_containers(
    unzipped_artifact: Path, notifying_app: Callable[..., None], configured_app: str, redis_url: str
) -> Iterator[list[LambdaContainer]]:
    """Two warm containers of the relay's function: two overlapping invocations are two containers."""
    env = function_environment(RELAY, configured_app, REDIS_URL=redis_url, NOTIFY_RELAY_DELAY="60")
    with ExitStack() as stack:
        containers = [stack.enter_context(LambdaContainer(unzipped_artifact, env)) for _ in range(2)]
        for container in containers:  # cold start now, so that the runs below start together
            assert container.invoke(f"app.{RELAY}", schedule_event(RELAY))["handed_off"] == 0
        yield containers


def broker_messages(redis_url: str) -> list[str]:
    """The task ids of the messages waiting in Redis for a worker."""
    with redis.Redis.from_url(redis_url) as broker:
        return [json.loads(raw)["headers"]["id"] for raw in broker.lrange("celery", 0, -1)]


def test_two_relay_invocations_at_once_hand_an_overdue_notification_off_exactly_once(
    relay_containers: list[LambdaContainer], notifying_app: Callable[..., None], redis_url: str
) -> None:
    # GIVEN notifications whose hand-off failed (Redis unreachable when they were committed), now overdue
    notifying_app(REDIS_URL="redis://127.0.0.1:9/0")
    ids = {
        patients.create_patient(
            UnitOfWork(),
            numbered(without_phone(JANE), i),
            settings=bootstrap.patient_settings(),
        ).notification_id
        for i in range(200)
    }
    with UnitOfWork() as uow:
        uow.session.execute(text("UPDATE notifications SET next_attempt_at = :past"), {"past": utc_now()})
        uow.commit()

    # WHEN EventBridge's scheduled event reaches two containers of the relay at the same moment
    answers = run_together(2, lambda i: relay_containers[i].invoke(f"app.{RELAY}", schedule_event(RELAY)))

    # THEN each notification went to the broker once, queued, and the runs say how many each handed off
    messages = broker_messages(redis_url)
    assert sorted(messages) == sorted(ids)
    assert sum(answer["handed_off"] for answer in answers) == len(ids)
    with UnitOfWork() as uow:
        assert set(uow.session.execute(text("SELECT status FROM notifications")).scalars()) == {"queued"}


def test_a_purge_invocation_deletes_keys_past_24_hours_and_nothing_younger(
    unzipped_artifact: Path, configured_app: str
) -> None:
    # GIVEN idempotency keys a minute past their 24 hours, and others a minute short of them
    now = utc_now()

    def key(name: str, age: timedelta) -> dict[str, Any]:
        return {"key": name, "created": now - age, "expires": now - age + KEY_LIFETIME}

    past, young = timedelta(hours=24, minutes=1), timedelta(hours=23, minutes=59)
    rows = [key(f"old-{i}", past) for i in range(3)] + [key(f"young-{i}", young) for i in range(2)]
    insert_idempotency_keys(rows)

    # WHEN EventBridge invokes the purge's function (no Redis in its environment, as deployed)
    with LambdaContainer(unzipped_artifact, function_environment(PURGE, configured_app)) as container:
        answer = container.invoke(f"app.{PURGE}", schedule_event(PURGE))
        modules = container.report()["modules"]

    # THEN the expired keys are gone and the younger ones stay
    assert answer == {"idempotency_keys_purged": 3}
    with UnitOfWork() as uow:
        left = sorted(uow.session.execute(text("SELECT key FROM idempotency_keys")).scalars())
    assert left == ["young-0", "young-1"]
    # and its cold start loaded no broker, AWS SDK or validator: the purge uses none
    assert heavy_modules(modules) == []
