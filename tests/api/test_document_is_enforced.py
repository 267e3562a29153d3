"""The API enforces what its OpenAPI document says, on SQLite and PostgreSQL: query parameters of
every route, and the conditional headers' published grammar."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.helpers.api import assert_documented, error_code_and_field, get_document
from tests.helpers.databases import sqlite_only
from tests.helpers.patients import JOHN, without_phone
from tests.helpers.tokens import AUTH, JSON_AUTH

PATH_PARAMETER = re.compile(r"{([^}]+)}")
NOTIFICATION_ID = "00000000-0000-4000-8000-000000000000"


def create_patient(client: Any) -> int:
    body = without_phone(JOHN)
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


def concrete_path(path: str, operation: dict[str, Any], patient_id: int) -> str:
    """``path`` with a value for each path parameter: the patient's id, a UUID, a documented asset."""
    schemas = {p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "path"}

    def value(name: str) -> str:
        if "enum" in schemas[name]:
            return str(schemas[name]["enum"][0])
        return str(patient_id) if name == "patient_id" else NOTIFICATION_ID

    return PATH_PARAMETER.sub(lambda found: value(found.group(1)), path)


def every_operation(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest.mark.parametrize(
    "query, field",
    [
        ("utm_source=mail", "utm_source"),
        ("x-schemathesis-unknown-property=42", "x-schemathesis-unknown-property"),
    ],
)
def test_every_route_refuses_a_query_parameter_it_does_not_declare(
    client: Any, query: str, field: str
) -> None:
    # GIVEN a patient, so that routes under it would otherwise answer (or delete it)
    document = get_document(client)
    patient_id = create_patient(client)

    # WHEN each operation of the document is called with a parameter it does not declare
    answers = []
    for path, method, operation in every_operation(document):
        url = f"{concrete_path(path, operation, patient_id)}?{query}"
        response = client.http.request(method.upper(), url, headers=JSON_AUTH, body=b'{"name": "Changed"}')
        answers.append((path, method, response))

    # THEN each one answers the same documented 400 naming it, before its handler ran
    for path, method, response in answers:
        assert response.status_code == 400, (path, method, response.body)
        assert error_code_and_field(response) == ("validation_failed", field)
        assert_documented(document, path, method, response)
    patient = client.http.get(f"/patients/{patient_id}", headers=AUTH)
    assert (patient.status_code, patient.json_body["name"]) == (200, JOHN["name"])


@pytest.mark.parametrize("name", ["na%00me", "%E2%80%AEevil", "a" * 41, "x<script>"])
@sqlite_only
def test_an_unknown_query_parameter_is_named_only_when_plain(client: Any, name: str) -> None:
    response = client.http.get(f"/health?{name}=1")

    assert response.status_code == 400
    assert response.json_body["message"] == "Unknown query parameter (its name is not a plain parameter name)"
    assert "field" not in response.json_body


def test_declared_query_parameters_are_still_accepted(client: Any) -> None:
    patient_id = create_patient(client)

    unknown_beside_declared = client.http.get("/patients?page=1&per_page=5&sort=name", headers=AUTH)
    assert unknown_beside_declared.json_body["field"] == "sort"
    for url in (
        "/patients?page=1&per_page=5&after=0",
        f"/patients/{patient_id}/notifications?page=1&per_page=5",
        "/notifications?status=failed&page=1&per_page=5",
        f"/audit?patient_id={patient_id}&principal=suite&since=2026-01-01&until=2999-01-01T00:00Z&per_page=5",
    ):
        response = client.http.get(url, headers=AUTH)
        assert response.status_code == 200, (url, response.body)


@pytest.mark.parametrize(
    "value",
    [
        '"1"',
        '"2"',
        "*",
        ' W/"1" , "9"',
        ', "1",,',
        '"a,b"',
        '""',
        "R",
        "uG_f:",
        '"',
        "__main__",
        '*, "1"',
        ",,,",
    ],
)
def test_a_tag_condition_is_a_400_exactly_when_the_document_refuses_it(client: Any, value: str) -> None:
    document = get_document(client)
    patient_id = create_patient(client)
    patient_path = f"/patients/{patient_id}"

    for method, header, body in (("get", "If-None-Match", None), ("put", "If-Match", b'{"name": "Changed"}')):
        parameters = document["paths"]["/patients/{patient_id}"][method]["parameters"]
        schema = next(p["schema"] for p in parameters if p["name"] == header)
        response = client.http.request(
            method.upper(), patient_path, headers={**JSON_AUTH, header: value}, body=body
        )

        admitted = Draft202012Validator(schema).is_valid(value)
        assert (response.status_code != 400) == admitted, (header, value, response.status_code, response.body)
        if not admitted:
            assert response.json_body["field"] == header
