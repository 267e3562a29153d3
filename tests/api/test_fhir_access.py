"""The FHIR face behind the same scopes, minimum necessary and error classes as the JSON API:
every refusal an OperationOutcome (validated by ``fhir.resources`` R4B), with the request's id."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import chalice.test
import pytest

from chalicelib.errors import DatabaseUnavailable, RateLimited
from tests.helpers.api import get_document
from tests.helpers.environment import configure_environment
from tests.helpers.fhir import FHIR_JSON, fhir_patient, outcome, validated

WRITER, READER, CLINIC = "fhir-writer-token", "fhir-reader-token", "fhir-clinic-token"
TOKENS = f"importer[patients:write]:{WRITER},front-desk[patients:read audit:read]:{READER},clinic:{CLINIC}"
ZELDA = fhir_patient("Zelda Quixote", "zelda.quixote@clinic-example.org", "+1 415 555 0199")
PATIENT_DATA = re.compile(r"zelda|quixote|clinic-example|555 0199|5550199", re.IGNORECASE)
PATH_PARAMETER = re.compile(r"{([^}]+)}")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[chalice.test.Client]:
    configure_environment(monkeypatch, DATABASE_URL=sqlite_url, API_TOKENS=TOKENS)
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


def call(client: Any, method: str, path: str, token: str, body: Any = None, **headers: str) -> Any:
    sent = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, **headers}
    return client.http.request(method, path, headers=sent, body=json.dumps(body) if body else b"")


def assert_no_patient_data(response: Any) -> None:
    shown = response.body.decode(errors="replace") + json.dumps(dict(response.headers))
    assert PATIENT_DATA.search(shown) is None, shown


def test_a_write_only_token_gets_no_patient_data_from_the_fhir_face(client: Any) -> None:
    # WHEN a write-only token creates, updates, conditionally creates again and deletes
    created = call(client, "POST", "/fhir/Patient", WRITER, ZELDA)
    patient_id = created.headers["Location"].split("/Patient/")[1].split("/")[0]
    path = f"/fhir/Patient/{patient_id}"
    updated = call(client, "PUT", path, WRITER, {**ZELDA, "id": patient_id}, **{"If-Match": 'W/"1"'})
    matched = call(
        client,
        "POST",
        "/fhir/Patient",
        WRITER,
        ZELDA,
        **{"If-None-Exist": "email=zelda.quixote@clinic-example.org"},
    )
    duplicate = call(client, "POST", "/fhir/Patient", WRITER, ZELDA)
    stale = call(client, "PUT", path, WRITER, {**ZELDA, "id": patient_id}, **{"If-Match": 'W/"1"'})

    # THEN it is told the id and version (Location, ETag), never the patient's data
    assert (created.status_code, created.body, created.headers["ETag"]) == (201, b"", 'W/"1"')
    assert (updated.status_code, updated.body, updated.headers["ETag"]) == (200, b"", 'W/"2"')
    assert (matched.status_code, matched.body) == (200, b"")
    outcome(duplicate, 409, "conflict")
    outcome(stale, 412, "conflict")
    for response in (created, updated, matched, duplicate, stale):
        assert_no_patient_data(response)

    # WHEN it calls every FHIR route that reads: refused (403, forbidden), with no patient data
    document = get_document(client)
    for route, item in document["paths"].items():
        for method, operation in item.items():
            needs = {scope for need in operation["security"] for scope in need.get("bearerToken", [])}
            if not route.startswith("/fhir/") or "patients:read" not in needs:
                continue
            concrete = PATH_PARAMETER.sub(lambda m: {"patient_id": patient_id}.get(m.group(1), "2"), route)
            response = call(client, method.upper(), concrete, WRITER)
            outcome(response, 403, "forbidden")
            assert_no_patient_data(response)

    # (a token that may read sees the change; the delete answers nothing of it)
    assert validated(call(client, "GET", path, READER), "Patient")["meta"]["versionId"] == "2"
    deleted = call(client, "DELETE", path, WRITER)
    assert (deleted.status_code, deleted.body) == (204, b"")


def test_a_read_only_token_cannot_write(client: Any) -> None:
    refused = call(client, "POST", "/fhir/Patient", READER, ZELDA)

    diagnostics = outcome(refused, 403, "forbidden")
    assert "patients:write" in diagnostics
    assert refused.headers["Content-Type"].startswith(FHIR_JSON)


def test_each_error_class_of_the_wrapper_is_an_operation_outcome(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = call(client, "POST", "/fhir/Patient", CLINIC, ZELDA)
    path = f"/fhir/Patient/{validated(created, 'Patient')['id']}"

    # 429: throttled, with Retry-After
    def over_the_limit(*_: Any) -> None:
        raise RateLimited(7)

    with monkeypatch.context() as patched:
        patched.setattr("chalicelib.http.routes.enforce_rate_limit", over_the_limit)
        limited = call(client, "GET", path, CLINIC)
    outcome(limited, 429, "throttled")
    assert limited.headers["Retry-After"] == "7"

    # 503 (the database cannot be reached) and 500 (anything unexpected): exception, saying no cause
    def unreachable(*_: Any, **__: Any) -> None:
        raise DatabaseUnavailable()

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("SELECT name FROM patients WHERE email = 'zelda.quixote@clinic-example.org'")

    monkeypatch.setattr("chalicelib.patients.service.get_patient", unreachable)
    unavailable = call(client, "GET", path, CLINIC)
    monkeypatch.setattr("chalicelib.patients.service.get_patient", broken)
    failed = call(client, "GET", path, CLINIC)

    outcome(unavailable, 503, "exception")
    assert int(unavailable.headers["Retry-After"]) >= 1
    diagnostics = outcome(failed, 500, "exception")
    assert "internal error" in diagnostics and "request id" in diagnostics
    assert_no_patient_data(failed)
