"""A full patient lifecycle with real parts leaves no patient data in any log line or broker message."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT
from tests.helpers.processes import WorkerProcess
from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import wait_until

RENAMED = {"name": "Zelda Featherstonehaugh", "phone": "+1 628 555 0133"}
# Fragments of every value, so that re-encodings (lower case, digits only) are caught too.
PHI_FRAGMENTS = (
    *DISTINCTIVE_FRAGMENTS,
    "featherstonehaugh",
    "6285550133",
    "555 0133",
    "5550133",
)


def assert_no_phi(where: str, text: str) -> None:
    lowered = text.lower()
    for fragment in PHI_FRAGMENTS:
        assert fragment not in lowered, f"{fragment!r} found in {where}"


def raw_broker_contents(redis_url: str) -> str:
    """Every key and value in the broker's database, list messages decoded too."""
    parts: list[str] = []
    with redis.Redis.from_url(redis_url) as broker:
        for key in broker.scan_iter():
            parts.append(key.decode(errors="replace"))
            kind = broker.type(key).decode()
            if kind == "list":
                values = broker.lrange(key, 0, -1)
            elif kind == "hash":
                values = list(broker.hgetall(key).values())
            else:
                values = [broker.dump(key) or b""]
            for value in values:
                parts.append(value.decode(errors="replace"))
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    parts.append(base64.b64decode(json.loads(value)["body"]).decode(errors="replace"))
    return "\n".join(parts)


def test_a_full_lifecycle_leaves_no_patient_data_in_logs_or_broker(
    client: Any,
    notifying_app: Callable[..., None],
    celery_worker: Callable[..., WorkerProcess],
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = []

    # GIVEN no worker yet: messages stay in Redis to be read raw
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))
    assert created.status_code == 201, created.body
    patient_id = created.json_body["patient"]["id"]
    responses.append(created)
    responses.append(client.http.get(f"/patients/{patient_id}", headers=AUTH))
    updated = client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps(RENAMED))
    responses.append(updated)
    responses.append(client.http.get("/patients", headers=AUTH))
    responses.append(client.http.get(f"/patients/{patient_id}/notifications", headers=AUTH))
    assert all(r.status_code == 200 for r in responses[1:]), [r.body for r in responses]
    queued = raw_broker_contents(redis_url)
    assert created.json_body["notification_id"] in queued

    # WHEN a worker delivers them, and the patient is then deleted
    worker = celery_worker()
    for notification_id in (created.json_body["notification_id"], updated.json_body["notification_id"]):
        wait_until(lambda nid=notification_id: worker.sent_lines(nid))
    in_flight = raw_broker_contents(redis_url)
    deleted = client.http.delete(f"/patients/{patient_id}", headers=AUTH)
    assert deleted.status_code in (200, 204), deleted.body

    # THEN responses with patient data are not cacheable
    for response in responses:
        assert response.headers.get("Cache-Control") == "no-store", response.headers
    # and no patient data is in the broker, the API's log or the worker's log
    assert_no_phi("broker before delivery", queued)
    assert_no_phi("broker after delivery", in_flight)
    assert_no_phi("broker after delete", raw_broker_contents(redis_url))
    api_log = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    assert_no_phi("API log", api_log)
    assert_no_phi("worker log", worker.log())
