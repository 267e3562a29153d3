"""No patient data in a URL: a query parameter named like a patient field is a 400 `phi_in_url` on
every route, public ones and ones that declare no query included, and its value goes nowhere."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.patients.phi import names_patient_data
from chalicelib.validation import SHOWN_FIELD_NAME
from tests.helpers.api import (
    assert_documented,
    documented_error_codes,
    error_code_and_field,
    error_message,
    get_document,
)
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import AUTH, JSON_AUTH

PATH_PARAMETER = re.compile(r"{([^}]+)}")
SECRET = "Zelda Quixote"  # a value that must travel nowhere
SEARCH_ROUTE = "POST /patients/search"
FHIR_SEARCH_ROUTE = "POST /fhir/Patient/_search"


def concrete(path: str, operation: dict[str, Any], patient_id: int) -> str:
    schemas = {p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "path"}

    def value(name: str) -> str:
        if "enum" in schemas[name]:
            return str(schemas[name]["enum"][0])
        return str(patient_id) if name == "patient_id" else "00000000-0000-4000-8000-000000000000"

    return PATH_PARAMETER.sub(lambda found: value(found.group(1)), path)


def create_patient(client: Any) -> int:
    body = {"name": "John Doe", "email": "john.doe@example.com"}
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


@pytest.mark.parametrize(
    "name", ["name", "EMAIL", "Phone", "family:exact", "birthDate", "address-city", "first_name", "dob"]
)
@sqlite_only
def test_every_route_refuses_patient_data_in_its_query_without_repeating_it(
    client: Any, name: str, api_log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    # GIVEN a patient, so that routes under it would otherwise answer (or change it)
    document = get_document(client)
    patient_id = create_patient(client)

    # WHEN each operation of the document is called with patient data in its query string
    answers = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            url = f"{concrete(path, operation, patient_id)}?{quote(name)}={quote(SECRET)}"
            payload = b'{"name": "Changed"}'
            response = client.http.request(method.upper(), url, headers=JSON_AUTH, body=payload)
            answers.append((path, method, response))

    # THEN each one answers the documented 400 pointing to the search route, before its handler ran
    for path, method, response in answers:
        assert response.status_code == 400, (path, method, response.body)
        # Named when the name is plain (family:exact is not: its colon), as unknown parameters are.
        shown = name if SHOWN_FIELD_NAME.fullmatch(name) else None
        assert error_code_and_field(response) == ("phi_in_url", shown), (path, method)
        # The FHIR face names its own search route, with its form body.
        search_route = FHIR_SEARCH_ROUTE if path.startswith("/fhir/") else SEARCH_ROUTE
        assert search_route in error_message(response)
        assert "Zelda" not in response.body.decode() and "Quixote" not in response.body.decode()
        assert_documented(document, path, method, response)
    assert "Zelda" not in json.dumps(api_log_lines())
    patient = client.http.get(f"/patients/{patient_id}", headers=AUTH)
    assert (patient.status_code, patient.json_body["name"]) == (200, "John Doe")


@sqlite_only
def test_patient_data_is_refused_before_an_unknown_or_beside_a_declared_parameter(client: Any) -> None:
    for url in ("/patients?sort=id&email=a%40b.example", "/patients?page=1&per_page=5&phone=555"):
        response = client.http.get(url, headers=AUTH)

        assert response.status_code == 400, url
        assert response.json_body["code"] == "phi_in_url"


@sqlite_only
def test_a_name_that_is_not_plain_is_not_repeated(client: Any) -> None:
    response = client.http.get("/health?%E2%80%AEname%00=x")

    assert response.json_body["code"] == "phi_in_url"
    assert "field" not in response.json_body


@sqlite_only
def test_the_document_lists_phi_in_url_among_every_operations_400s(client: Any) -> None:
    document = get_document(client)

    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "phi_in_url" in documented_error_codes(operation, 400), (path, method)


@pytest.mark.parametrize(
    "name",
    [
        *("name", "NAME", "Ｎａｍｅ", "given", "family", "email", "phone", "telecom", "birthdate"),
        *("address", "address-postalcode", "identifier", "death-date", "phonetic", "name:contains"),
        *("firstName", "last_name", "full-name", "date_of_birth", "phoneNumber", "email_address"),
        *("mobile", "zip", "postal_code", "ssn", "mrn"),
    ],
)
def test_names_that_announce_patient_data(name: str) -> None:
    assert names_patient_data(name)


@pytest.mark.parametrize(
    "name",
    [
        *("page", "per_page", "after", "before", "status", "patient_id", "principal", "since", "until"),
        *("utm_source", "x-schemathesis-unknown-property", "sort", "username", "namespace"),
    ],
)
def test_names_that_do_not(name: str) -> None:
    assert not names_patient_data(name)


@sqlite_only
def test_no_route_declares_a_query_parameter_named_like_patient_data(client: Any) -> None:
    # Such a parameter could never be used: the check runs first, whatever a route declares.
    document = get_document(client)

    declared = [
        (path, parameter["name"])
        for path, item in document["paths"].items()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    ]
    assert declared and [found for found in declared if names_patient_data(found[1])] == []
