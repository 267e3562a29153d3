"""The OpenAPI document: valid 3.1, complete, and true to what the API enforces and answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice import Chalice
from openapi_spec_validator import validate

from chalicelib.bootstrap import reset_for_tests
from chalicelib.http.openapi import UndocumentedRoute, build_document, document_json
from chalicelib.patients.fields import EMAIL, NAME, PHONE
from tests.helpers.api import assert_documented, get_document, schema_validator
from tests.helpers.databases import sqlite_only
from tests.helpers.patients import JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH

TEXT_AUTH = {**AUTH, "Content-Type": "text/plain"}
# 64-character local part, domain labels of at most 63: exactly EMAIL.max_length characters.
LONGEST_EMAIL = "l" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * (EMAIL.max_length - 197) + ".com"


@sqlite_only
def test_document_is_served_without_a_token_and_is_valid_openapi_3_1(client: Any) -> None:
    response = client.http.get("/openapi.json")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = json.loads(response.body)
    assert document["openapi"] == "3.1.0"
    validate(document)


@sqlite_only
def test_every_chalice_route_is_documented_and_nothing_else(client: Any) -> None:
    from app import app

    document = get_document(client)

    routes = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented


@sqlite_only
def test_protected_routes_declare_bearer_and_public_ones_do_not(client: Any) -> None:
    from app import app

    document = get_document(client)

    assert document["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerToken"]["description"],
    }
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            described = document["paths"][path][method.lower()]
            if entry.authorizer is None:
                assert described["security"] == [] and "401" not in described["responses"]
                assert "403" not in described["responses"] and "429" not in described["responses"]
            else:
                # The bearer requirement names the route's scope (OpenAPI 3.1 allows roles there).
                if path in ("/audit", "/health/notifications"):
                    expected = "audit:read"
                elif path in (
                    "/patients/search",
                    "/fhir/Patient/_search",
                ):  # reads: POST keeps criteria out of URLs
                    expected = "patients:read"
                else:
                    expected = "patients:read" if method == "GET" else "patients:write"
                assert described["security"] == [{"bearerToken": [expected]}]
                assert {"401", "403", "429"} <= set(described["responses"])
                assert "Retry-After" in described["responses"]["429"]["headers"]
            assert "500" in described["responses"]


def test_a_route_without_a_description_fails_the_build() -> None:
    undocumented = Chalice(app_name="undocumented")

    @undocumented.route("/anything")
    def anything() -> dict[str, str]:
        return {}

    with pytest.raises(UndocumentedRoute):
        build_document(undocumented)


@sqlite_only
def test_document_is_built_once_per_process(client: Any) -> None:
    reset_for_tests()

    first = client.http.get("/openapi.json").body
    second = client.http.get("/openapi.json").body

    assert first == second
    assert document_json.cache_info().misses == 1 and document_json.cache_info().hits == 1


def test_answers_match_the_documented_schemas(client: Any) -> None:
    # GIVEN the document, WHEN every route answers, THEN each body fits the schema of its status.
    document = get_document(client)

    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))
    patient_id = created.json_body["patient"]["id"]
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({**JOHN, "email": "b@example.com"}))
    answers = [
        ("/patients", "post", created),
        ("/patients", "post", client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))),
        ("/patients", "post", client.http.post("/patients", headers=JSON_AUTH, body="{")),
        ("/patients", "post", client.http.post("/patients", headers=TEXT_AUTH, body="x")),
        ("/patients", "post", client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"a": 1}))),
        ("/patients", "get", client.http.get("/patients?per_page=1", headers=AUTH)),
        ("/patients", "get", client.http.get(f"/patients?after={patient_id}", headers=AUTH)),
        ("/patients", "get", client.http.get("/patients?after=-1", headers=AUTH)),
        ("/patients", "get", client.http.get("/patients")),
        ("/patients/{patient_id}", "get", client.http.get(f"/patients/{patient_id}", headers=AUTH)),
        ("/patients/{patient_id}", "get", client.http.get("/patients/0", headers=AUTH)),
        (
            "/patients/{patient_id}",
            "put",
            client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body='{"phone": null}'),
        ),
        (
            "/patients/{patient_id}",
            "put",
            client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body='{"email": "b@example.com"}'),
        ),
        ("/patients/{patient_id}", "delete", client.http.delete(f"/patients/{patient_id}", headers=AUTH)),
        ("/patients/{patient_id}", "delete", client.http.delete(f"/patients/{patient_id}", headers=AUTH)),
        ("/docs/assets/{asset}", "get", client.http.get("/docs/assets/nope.js")),
    ]

    statuses = sorted({response.status_code for _, _, response in answers})
    assert statuses == [200, 201, 400, 401, 404, 409, 415]
    for path, method, response in answers:
        assert_documented(document, path, method, response)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "A" * NAME.max_length, "email": "a@example.com"},
        {"name": "A" * (NAME.max_length + 1), "email": "a@example.com"},
        {"name": "A", "email": LONGEST_EMAIL},
        {"name": "A", "email": "a@example.com", "phone": "+1 212 555 0100" + " " * (PHONE.max_length - 15)},
        {"name": "A", "email": "a@example.com", "phone": "1" * (PHONE.max_length + 1)},
        {"name": "A", "email": "a@example.com", "phone": None},
        {"name": "   ", "email": "a@example.com"},
        {"name": "A\u0007B", "email": "a@example.com"},
        {"name": "A\u202eB", "email": "a@example.com"},
        {"name": "", "email": "a@example.com"},
        {"name": 7, "email": "a@example.com"},
        {"email": "a@example.com"},
        {"name": "A", "email": "a@example.com", "role": "admin"},
        {"name": "\u200b", "email": "a@example.com"},
        {"name": "\u3164\u2800", "email": "a@example.com"},
        {"name": "\u200bA", "email": "a@example.com"},
        {"name": " " * 10 + "A" * (NAME.max_length - 10), "email": "a@example.com"},
        {"name": " " + "A" * NAME.max_length, "email": "a@example.com"},
        {"name": "A", "email": "not-an-email"},
        {"name": "A", "email": " a@example.com "},
        {"name": "A", "email": "a@localhost"},
        {"name": "A", "email": "a@example.com", "phone": "call me"},
        {"name": "A", "email": "a@example.com", "phone": "(415) 555-0100"},
        {"name": "A", "email": "a@example.com", "phone": "12"},
    ],
)
def test_request_schema_and_validation_agree(client: Any, body: dict[str, Any]) -> None:
    # One declaration drives both: what the schema refuses is a 400, what it admits is not; a value
    # it admits that email-validator or phonenumbers refuse is a 422 (the pattern cannot say it).
    document = get_document(client)
    schema = schema_validator(document, "/components/schemas/PatientCreate")

    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))

    assert response.status_code in (201, 400, 422), response.body
    assert schema.is_valid(body) == (response.status_code != 400), response.body
