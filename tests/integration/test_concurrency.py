"""Concurrent requests: the database's constraints decide, nothing is lost, nothing is a 500."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import run_together

WORKERS = 16


def patient_path(client: Any, email: str) -> str:
    body = json.dumps({"name": "A", "email": email})
    patient = client.http.post("/patients", headers=JSON_AUTH, body=body).json_body["patient"]
    return f"/patients/{patient['id']}"


def test_sixteen_creates_of_one_email_give_one_201(client: Any) -> None:
    body = json.dumps({"name": "Race", "email": "race@example.com"})

    responses = run_together(WORKERS, lambda i: client.http.post("/patients", headers=JSON_AUTH, body=body))

    assert Counter(r.status_code for r in responses) == {201: 1, 409: WORKERS - 1}
    assert all(r.json_body["code"] == "duplicate_email" for r in responses if r.status_code == 409)
    assert client.http.get("/patients", headers=AUTH).json_body["total"] == 1


def test_concurrent_creates_of_distinct_emails_all_succeed(client: Any) -> None:
    def create(i: int) -> Any:
        body = json.dumps({"name": f"P{i}", "email": f"p{i}@example.com"})
        return client.http.post("/patients", headers=JSON_AUTH, body=body)

    responses = run_together(WORKERS, create)

    assert [r.status_code for r in responses] == [201] * WORKERS
    created = {r.json_body["patient"]["email"] for r in responses}
    assert created == {f"p{i}@example.com" for i in range(WORKERS)}


def test_concurrent_partial_updates_lose_nothing(client: Any) -> None:
    path = patient_path(client, "a@example.com")

    def update(i: int) -> Any:
        field = {"name": "Renamed"} if i % 2 else {"phone": "+1 415 555 0100"}
        return client.http.put(path, headers=JSON_AUTH, body=json.dumps(field))

    responses = run_together(8, update)

    assert [r.status_code for r in responses] == [200] * 8
    final = client.http.get(path, headers=AUTH).json_body
    assert (final["name"], final["phone"]) == ("Renamed", "+1 415 555 0100")


def test_concurrent_updates_and_deletes_never_500(client: Any) -> None:
    path = patient_path(client, "gone@example.com")

    def act(i: int) -> Any:
        if i % 2:
            return client.http.delete(path, headers=AUTH)
        return client.http.put(path, headers=JSON_AUTH, body=json.dumps({"name": f"N{i}"}))

    responses = run_together(8, act)

    assert {r.status_code for r in responses} <= {200, 404}
    assert sum(1 for i, r in enumerate(responses) if i % 2 and r.status_code == 200) == 1


def test_two_updates_with_one_if_match_give_one_200_and_one_412(client: Any) -> None:
    # GIVEN two clients that both read version 1 of a patient
    path = patient_path(client, "locked@example.com")
    headers = {**JSON_AUTH, "If-Match": client.http.get(path, headers=AUTH).headers["ETag"]}

    # WHEN both send their change conditioned on that version at the same moment
    responses = run_together(
        2, lambda i: client.http.put(path, headers=headers, body=json.dumps({"name": f"W{i}"}))
    )

    # THEN the row lock lets exactly one apply; the other learns it was too late and changed nothing
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200).json_body["patient"]
    final = client.http.get(path, headers=AUTH)
    assert final.json_body == winner
    assert final.headers["ETag"] == headers["If-Match"].replace("-1", "-2")


def test_sixteen_creates_with_one_idempotency_key_make_one_patient(client: Any) -> None:
    body = json.dumps({"name": "Once", "email": "once@example.com"})
    headers = {**JSON_AUTH, "Idempotency-Key": "retry-storm-1"}

    responses = run_together(WORKERS, lambda i: client.http.post("/patients", headers=headers, body=body))

    assert [r.status_code for r in responses] == [201] * WORKERS
    assert len({r.body for r in responses}) == 1  # the same body, byte for byte, same id
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == WORKERS - 1
    assert client.http.get("/patients", headers=AUTH).json_body["total"] == 1
