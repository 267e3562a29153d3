"""The API's log: one JSON access line per request, the request id on every line, no patient data."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import chalice.test

from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT
from tests.helpers.tokens import AUTH, JSON_AUTH

LogLines = Callable[[], list[dict[str, Any]]]


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "telehealth.access"]


def test_each_request_writes_one_access_line_with_its_route_status_duration_and_principal(
    client: chalice.test.Client, api_log_lines: LogLines
) -> None:
    # WHEN a protected route answers 404 and a public one answers
    missing = client.http.get("/patients/424242", headers=AUTH)
    client.http.get("/openapi.json")

    # THEN each request has one access line with every field
    first, second = access_lines(api_log_lines())
    assert missing.status_code == 404
    assert first["message"] == "request"
    assert first["level"] == "INFO"
    assert datetime.fromisoformat(first["timestamp"]).utcoffset() is not None
    assert first["method"] == "GET"
    assert first["route"] == "/patients/{patient_id}"  # the template: ids and queries are not logged
    assert first["status"] == 404
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["principal"] == "suite"
    # the same request id the client saw in the error body
    assert first["request_id"] == missing.json_body["request_id"]
    assert (second["route"], second["status"], second["principal"]) == ("/openapi.json", 200, None)
    assert second["request_id"] != first["request_id"]


def test_lines_logged_while_serving_a_request_carry_its_request_id(
    client: chalice.test.Client, api_log_lines: LogLines
) -> None:
    # GIVEN no Redis is configured, so a change's hand-off logs a warning
    # WHEN a patient is created
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))

    # THEN the warning names the notification and carries the request's id
    assert created.status_code == 201, created.body
    lines = api_log_lines()
    (access,) = access_lines(lines)
    (warning,) = [line for line in lines if line["logger"] == "telehealth.notifications"]
    assert warning["level"] == "WARNING"
    assert warning["notification_id"] == created.json_body["notification_id"]
    assert warning["request_id"] == access["request_id"]
    assert (access["route"], access["method"], access["status"]) == ("/patients", "POST", 201)


def test_no_patient_data_in_any_line(client: chalice.test.Client, api_log_lines: LogLines) -> None:
    # WHEN a patient is created, read, listed, updated, searched for with a bad query, and deleted
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))
    patient_id = created.json_body["patient"]["id"]
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    client.http.get("/patients", headers=AUTH)
    renamed = json.dumps({"email": DISTINCTIVE_PATIENT["email"]})
    client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=renamed)
    client.http.get(f"/patients?page={DISTINCTIVE_PATIENT['name']}", headers=AUTH)
    client.http.delete(f"/patients/{patient_id}", headers=AUTH)

    # THEN every request was logged, and none of the patient's values
    lines = api_log_lines()
    assert len(access_lines(lines)) == 6
    logged = "\n".join(json.dumps(line) for line in lines).lower()
    for fragment in DISTINCTIVE_FRAGMENTS:
        assert fragment not in logged
