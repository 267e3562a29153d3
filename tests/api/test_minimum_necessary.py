"""Minimum necessary: a patient's name, email and phone reach only tokens with `patients:read`.

A token that may only write (static or JWT) creates, changes, replays and deletes, and is told
the id, version, timestamps and the notification's id and status, never patient data; with both
scopes every answer is the seed's, as before.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import chalice.test
import jwt
import pytest

from tests.helpers.api import assert_documented, get_document
from tests.helpers.environment import configure_environment

WRITER, READER, CLINIC = "writer-token", "reader-token", "clinic-token"
ISSUER, AUDIENCE, HS256_SECRET = "https://idp.clinic.example", "telehealth-api", "x" * 32
TOKENS = (
    f"importer[patients:write]:{WRITER},"
    f"front-desk[patients:read audit:read]:{READER},"
    f"clinic:{CLINIC}"  # no scopes written: read and write, as before scopes existed
)
JANE = {"name": "Zelda Quixote", "email": "zelda.quixote@clinic-example.org", "phone": "+1 415 555 0199"}
# What no answer to a write-only token may hold, in any case: pieces of each of JANE's values.
PATIENT_DATA = re.compile(r"zelda|quixote|clinic-example|555 0199|5550199", re.IGNORECASE)
RECEIPT_FIELDS = {"id", "version", "created_at", "updated_at"}
PATH_PARAMETER = re.compile(r"{([^}]+)}")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[chalice.test.Client]:
    configure_environment(
        monkeypatch,
        DATABASE_URL=sqlite_url,
        API_TOKENS=TOKENS,
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
        JWT_HS256_SECRET=HS256_SECRET,
    )
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


def jwt_with_scope(scope: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "importer-7",
        "iat": now,
        "exp": now + 300,
        "scope": scope,
    }
    return jwt.encode(claims, HS256_SECRET, algorithm="HS256")


def call(client: Any, method: str, path: str, token: str, body: Any = None, **headers: str) -> Any:
    sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
    return client.http.request(method.upper(), path, headers=sent, body=json.dumps(body) if body else b"")


def concrete(route: str, patient_id: int, notification_id: str) -> str:
    def value(name: str) -> str:
        return {"patient_id": str(patient_id), "notification_id": notification_id}.get(name, "swagger-ui.css")

    return PATH_PARAMETER.sub(lambda found: value(found.group(1)), route)


def assert_no_patient_data(response: Any) -> None:
    shown = response.body.decode(errors="replace") + json.dumps(dict(response.headers))
    found = PATIENT_DATA.search(shown)
    assert found is None, shown[max(0, found.start() - 80) : found.end() + 80]


def assert_receipt(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert_no_patient_data(response)
    body = dict(response.json_body)
    assert set(body) == {"message", "patient", "notification_id", "notification_status"}
    assert set(body["patient"]) == RECEIPT_FIELDS
    patient_id, version = body["patient"]["id"], body["patient"]["version"]
    assert response.headers["ETag"] == f'"{patient_id}-{version}"'
    return body


# The JWT is signed when the test runs, not when it is collected: its 5 minutes must not run out
# while other tests run first.
@pytest.mark.parametrize(
    "make_token", [lambda: WRITER, lambda: jwt_with_scope("patients:write")], ids=["static", "jwt"]
)
def test_a_write_only_token_never_sees_a_name_email_or_phone(
    client: Any, make_token: Callable[[], str]
) -> None:
    token = make_token()
    document = get_document(client)
    key = {"Idempotency-Key": "5f0c2a8e-8d1b-4b1e-9a53-2c6f1f0b7d11"}

    # WHEN a write-only token creates a patient, retries the create, and changes it
    first = call(client, "post", "/patients", token, JANE, **key)
    created = assert_receipt(first, 201)
    patient_id = created["patient"]["id"]
    path = f"/patients/{patient_id}"
    replayed = call(client, "post", "/patients", token, JANE, **key)
    cleared = call(client, "put", path, token, {"phone": None})
    renamed = call(client, "put", path, token, {"name": "Zelda Smith"})

    # THEN it is told what it needs to go on, and nothing of the patient's data
    assert (created["patient"]["version"], created["notification_status"]) == (1, "pending")  # no Redis
    assert assert_receipt(replayed, 201)["patient"] == created["patient"]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert assert_receipt(cleared, 200)["patient"]["version"] == 2
    assert assert_receipt(renamed, 200)["patient"]["version"] == 3

    # ... and refusals tell it nothing either: a duplicate email, a stale version
    duplicate = call(client, "post", "/patients", token, {**JANE, "name": "Somebody Else"})
    stale = call(client, "put", path, token, {"name": "Other"}, **{"If-Match": f'"{patient_id}-1"'})
    assert (duplicate.status_code, stale.status_code) == (409, 412)
    for response, route, method in (
        (first, "/patients", "post"),
        (replayed, "/patients", "post"),
        (cleared, "/patients/{patient_id}", "put"),
        (duplicate, "/patients", "post"),
        (stale, "/patients/{patient_id}", "put"),
    ):
        assert_no_patient_data(response)
        assert_documented(document, route, method, response)

    # WHEN it calls every other route: the reads, the lists, any search, the public ones
    for route, item in document["paths"].items():
        for method, operation in item.items():
            needs = {scope for need in operation["security"] for scope in need.get("bearerToken", [])}
            if "patients:write" in needs:
                continue  # each of those is called above
            response = call(client, method, concrete(route, patient_id, created["notification_id"]), token)
            # THEN those that need another scope are refused, and no answer holds patient data
            if needs:
                assert response.status_code == 403, (route, method, response.body)
            if response.headers.get("Content-Type", "").startswith("application/json"):
                assert_no_patient_data(response)  # the docs' script and stylesheet are no answers of ours

    # (the changes were made, as a token that may read can tell)
    stored = call(client, "get", path, READER).json_body
    assert (stored["name"], stored["email"], stored["phone"]) == ("Zelda Smith", JANE["email"], None)

    # WHEN it deletes the patient: the answer holds nothing of it
    deleted = call(client, "delete", path, token)
    assert deleted.status_code == 200
    assert_no_patient_data(deleted)
    assert call(client, "get", path, READER).status_code == 404


def test_with_both_scopes_the_answers_are_the_seeds(client: Any) -> None:
    key = {"Idempotency-Key": "both-scopes-key"}
    created = call(client, "post", "/patients", CLINIC, JANE, **key)
    patient_id = created.json_body["patient"]["id"]
    replayed = call(client, "post", "/patients", CLINIC, JANE, **key)
    updated = call(client, "put", f"/patients/{patient_id}", CLINIC, {"phone": None})
    by_jwt = call(
        client,
        "put",
        f"/patients/{patient_id}",
        jwt_with_scope("patients:read patients:write"),
        {"name": "Z"},
    )

    for response in (created, replayed, updated, by_jwt):
        assert set(response.json_body) == {"message", "patient", "notification_id"}
        assert set(response.json_body["patient"]) == {
            "id",
            "name",
            "email",
            "phone",
            "created_at",
            "updated_at",
        }
    assert created.json_body["patient"]["name"] == "Zelda Quixote"
    assert (updated.json_body["patient"]["email"], updated.json_body["patient"]["phone"]) == (
        JANE["email"],
        None,
    )
    assert by_jwt.json_body["patient"]["name"] == "Z"
