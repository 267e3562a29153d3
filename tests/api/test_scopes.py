"""Scoped tokens: a valid token without the route's scope gets a 403 with the JSON error body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import chalice.test
import pytest

from tests.helpers.api import assert_documented, get_document
from tests.helpers.environment import configure_environment
from tests.helpers.patients import JOHN, without_phone

READER, WRITER, AUDITOR, CLINIC = "reader-token", "writer-token", "auditor-token", "clinic-token"
TOKENS = (
    f"front-desk[patients:read]:{READER},"
    f"importer[patients:write]:{WRITER},"
    f"auditor[audit:read]:{AUDITOR},"
    f"clinic:{CLINIC}"  # no scopes written: read and write, as before scopes existed
)
PATIENT = without_phone(JOHN)  # an email notification only


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[chalice.test.Client]:
    configure_environment(monkeypatch, DATABASE_URL=sqlite_url, API_TOKENS=TOKENS)
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


def call(client: Any, method: str, path: str, token: str, body: Any = None) -> Any:
    kwargs = {"body": json.dumps(body)} if body is not None else {}
    return getattr(client.http, method)(path, headers=bearer(token), **kwargs)


def create_patient(client: Any) -> int:
    response = call(client, "post", "/patients", CLINIC, PATIENT)
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


def test_a_read_only_token_reads_and_cannot_write(client: Any) -> None:
    patient_id = create_patient(client)

    assert call(client, "get", "/patients", READER).status_code == 200
    assert call(client, "get", f"/patients/{patient_id}", READER).status_code == 200
    for method, path, body in (
        ("post", "/patients", {**PATIENT, "email": "other@example.com"}),
        ("put", f"/patients/{patient_id}", {"name": "Changed"}),
        ("delete", f"/patients/{patient_id}", None),
    ):
        refused = call(client, method, path, READER, body)

        assert refused.status_code == 403
        assert {k: v for k, v in refused.json_body.items() if k != "request_id"} == {
            "code": "insufficient_scope",
            "message": "This token lacks the patients:write scope",
        }
        assert refused.headers["Cache-Control"] == "no-store"
    # Nothing changed: the handler never ran.
    listed = call(client, "get", "/patients", CLINIC).json_body
    assert listed["total"] == 1 and listed["patients"][0]["name"] == PATIENT["name"]


def test_a_write_only_token_writes_and_cannot_read(client: Any) -> None:
    created = call(client, "post", "/patients", WRITER, PATIENT)
    patient_id = created.json_body["patient"]["id"]

    assert created.status_code == 201
    assert call(client, "put", f"/patients/{patient_id}", WRITER, {"name": "Jo"}).status_code == 200
    assert call(client, "get", f"/patients/{patient_id}", WRITER).json_body["code"] == "insufficient_scope"
    assert call(client, "get", "/patients", WRITER).status_code == 403
    assert call(client, "delete", f"/patients/{patient_id}", WRITER).status_code == 200


def test_an_audit_token_reaches_no_patient_route(client: Any) -> None:
    patient_id = create_patient(client)

    for method, path in (("get", "/patients"), ("get", f"/patients/{patient_id}"), ("delete", "/patients/1")):
        assert call(client, method, path, AUDITOR).status_code == 403


def test_the_scope_is_checked_before_the_body_or_the_id(client: Any) -> None:
    # A token that may not write learns nothing about what it sent or which ids exist.
    assert call(client, "post", "/patients", READER, {"bad": 1}).status_code == 403
    assert call(client, "put", "/patients/999", READER, {"name": "x"}).status_code == 403
    assert call(client, "get", "/patients/999", WRITER).status_code == 403


def test_refusals_match_the_document(client: Any) -> None:
    document = get_document(client)

    for path, method, token in (
        ("/patients", "post", READER),
        ("/patients", "get", WRITER),
        ("/patients/{patient_id}", "get", AUDITOR),
        ("/patients/{patient_id}", "put", READER),
        ("/patients/{patient_id}", "delete", READER),
    ):
        response = call(client, method, path.replace("{patient_id}", "1"), token, {"name": "x"})

        assert response.status_code == 403
        assert_documented(document, path, method, response)


def test_an_unknown_token_is_still_a_401(client: Any) -> None:
    response = call(client, "get", "/patients", "unknown-token")

    assert response.status_code == 401
    assert response.json_body["code"] == "unauthorized"


def test_a_context_without_scopes_allows_nothing(client: Any) -> None:
    # An authorizer context from before scopes (e.g. cached by API Gateway) must not open every route.
    from types import SimpleNamespace

    from chalicelib.http.requests import scopes_of

    request: Any = SimpleNamespace(context={"authorizer": {"principal": "clinic"}})
    assert scopes_of(request) == frozenset()
