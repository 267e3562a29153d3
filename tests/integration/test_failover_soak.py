"""A small failover drill: clients and a worker while every connection to the database is ended
every 2 s (an RDS failover, RDS Proxy recycling). No answer is a 500, a create retried with its
Idempotency-Key makes one patient, and every notification reaches a final state."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from chalicelib.storage.database import get_engine
from tests.helpers.databases import cutting_every_connection
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import relay_running, wait_until

CLIENTS = 2
LOAD_SECONDS = 10
CUT_EVERY_SECONDS = 2
FINAL_STATES = ("delivered", "failed", "cancelled")
# A client's retries of one create on 503 database_unavailable, as docs/api.md tells clients to.
CREATE_TRIES = 5


def run_client(
    client: Any, index: int, until: float, statuses: Counter[tuple[str, int, str]], keys: Counter[str]
) -> None:
    """Create (retrying a 503 with the same key), update, read, list; again until ``until``.
    ``keys`` counts the creates that ended in a 201 (``created``) and those given up (``gave_up``)."""
    n = 0
    while time.monotonic() < until:
        n += 1
        key = {"Idempotency-Key": f"soak-{index}-{n}-{uuid.uuid4().hex[:6]}"}
        body = json.dumps({"name": f"Soak {index}", "email": f"soak-{index}-{n}@example.com"})
        for _ in range(CREATE_TRIES):
            created = client.http.post("/patients", headers={**JSON_AUTH, **key}, body=body)
            note(statuses, "create", created)
            if created.status_code != 503:
                break
            time.sleep(0.1)
        keys["created" if created.status_code == 201 else "gave_up"] += 1
        if created.status_code != 201:
            continue
        path = f"/patients/{created.json_body['patient']['id']}"
        note(statuses, "update", client.http.put(path, headers=JSON_AUTH, body='{"name": "Soaked"}'))
        note(statuses, "read", client.http.get(path, headers=AUTH))
        note(statuses, "list", client.http.get("/patients?per_page=5", headers=AUTH))
        time.sleep(0.02)


def note(statuses: Counter[tuple[str, int, str]], what: str, response: Any) -> None:
    code = response.json_body.get("code", "") if response.status_code >= 400 else ""
    statuses[(what, response.status_code, code)] += 1


def unfinished_notifications() -> list[tuple[str, str]]:
    with get_engine().connect() as connection:
        rows = connection.execute(
            text("SELECT id, status FROM notifications WHERE status NOT IN :final").bindparams(
                bindparam("final", expanding=True)
            ),
            {"final": list(FINAL_STATES)},
        )
        return [(notification_id, status) for notification_id, status in rows]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_failover_every_two_seconds_gives_no_500_and_every_notification_a_final_state(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    database_url: str,
) -> None:
    celery_worker()
    statuses: Counter[tuple[str, int, str]] = Counter()
    keys: Counter[str] = Counter()

    # WHEN two clients work for 10 s while every backend of the database is ended every 2 s
    until = time.monotonic() + LOAD_SECONDS
    with cutting_every_connection(database_url, CUT_EVERY_SECONDS) as cut:
        threads = [
            threading.Thread(target=run_client, args=(client, i, until, statuses, keys))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # THEN nothing answered 500, every 503 says database_unavailable, and the drill did cut
    assert cut, "no backend was ended"
    assert not [s for s in statuses if s[1] >= 500 and s[1] != 503], statuses
    assert {code for (_, status, code) in statuses if status == 503} <= {"database_unavailable"}, statuses
    assert keys["created"] > 0, statuses
    # ... and each create made one patient, however often it was retried with its key: a second
    # one would have been refused as a duplicate email (409)
    assert not [s for s in statuses if s[0] == "create" and s[1] == 409], statuses
    with get_engine().connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM patients")).scalar_one()
    assert keys["created"] <= stored <= keys["created"] + keys["gave_up"]
    # ... and every notification reaches a final state (the relay hands off what a cut left behind)
    from app import app

    with relay_running(app):
        wait_until(lambda: not unfinished_notifications(), timeout=20)
