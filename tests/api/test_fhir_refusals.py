"""What the gateway answers before any view, for a FHIR client: an OperationOutcome.

API Gateway picks a gateway response's body template by the request's Accept (one template per
media type, deploy/gateway_responses.py); the local gateway (chalice local, chalice.test.Client)
picks the same way. Each OperationOutcome is parsed with fhir.resources' R4B models.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from chalicelib.http.gateway_responses import (
    GATEWAY_RESPONSES,
    ROUTE_NOT_FOUND_BODY,
    UNAUTHORIZED_BODY,
    fhir_outcome,
    wants_fhir,
)
from tests.helpers.api import assert_documented, get_document
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import AUTH

FHIR_ACCEPT = {"Accept": "application/fhir+json"}
# FHIR R4's IssueType value set (http://hl7.org/fhir/R4/valueset-issue-type.html); R4B keeps it.
ISSUE_TYPES = frozenset(
    [
        "invalid",
        "structure",
        "required",
        "value",
        "invariant",
        "security",
        "login",
        "unknown",
        "expired",
        "forbidden",
        "suppressed",
        "processing",
        "not-supported",
        "duplicate",
        "multiple-matches",
        "not-found",
        "deleted",
        "too-long",
        "code-invalid",
        "extension",
        "too-costly",
        "business-rule",
        "conflict",
        "transient",
        "lock-error",
        "no-store",
        "exception",
        "timeout",
        "incomplete",
        "throttled",
        "informational",
    ]
)


def outcome_of(response: Any) -> OperationOutcome:
    """The answer's OperationOutcome, validated, with one issue of a known code naming the request."""
    outcome = OperationOutcome.model_validate(json.loads(response.body))
    (issue,) = outcome.issue
    assert issue.code in ISSUE_TYPES
    assert issue.diagnostics.endswith(f"(request id {response.headers['x-amzn-RequestId']})")
    return outcome


@pytest.mark.parametrize(
    "headers",
    [FHIR_ACCEPT, {**FHIR_ACCEPT, "Authorization": "Bearer wrong-token"}],
    ids=["no-token", "wrong-token"],
)
@sqlite_only
def test_a_refused_token_is_a_login_outcome_for_a_fhir_client(client: Any, headers: dict[str, str]) -> None:
    # WHEN a FHIR client is refused by the authorizer
    response = client.http.get("/patients/1", headers=headers)

    # THEN the 401 and its challenge are the JSON API's, the body an OperationOutcome
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="telehealth-api"')
    assert response.headers["Cache-Control"] == "no-store"
    (issue,) = outcome_of(response).issue
    assert (issue.severity, issue.code) == ("error", "login")
    assert issue.diagnostics.startswith(UNAUTHORIZED_BODY["message"])


@pytest.mark.parametrize(
    ("path", "template"),
    [("/fhir/Patient/1", "/fhir/Patient/{patient_id}"), ("/patients/1", "/patients/{patient_id}")],
)
@pytest.mark.parametrize("headers", [FHIR_ACCEPT, {}], ids=["fhir-client", "other-client"])
@sqlite_only
def test_the_gateway_401_is_the_documented_one(
    client: Any, path: str, template: str, headers: dict[str, str]
) -> None:
    # GIVEN the published document; WHEN a client without a token reads, on either face
    document = get_document(client)
    response = client.http.get(path, headers=headers)

    # THEN the gateway's 401, in whichever body its Accept chose, is what the document says
    assert response.status_code == 401
    assert_documented(document, template, "get", response)


@sqlite_only
def test_an_unknown_route_is_a_not_found_outcome_for_a_fhir_client(client: Any) -> None:
    for headers in (FHIR_ACCEPT, {**FHIR_ACCEPT, **AUTH}):
        response = client.http.get("/fhir/Observation/1", headers=headers)

        assert response.status_code == 404
        (issue,) = outcome_of(response).issue
        assert issue.code == "not-found" and issue.diagnostics.startswith(ROUTE_NOT_FOUND_BODY["message"])


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/fhir/Patient/1", AUTH),  # a FHIR path: whatever the client accepts
        ("/fhir/metadata", {}),
        ("/patients/1", {**AUTH, **FHIR_ACCEPT}),  # a FHIR client on a JSON path
    ],
)
@sqlite_only
def test_a_method_the_path_does_not_declare_is_a_not_supported_outcome(
    client: Any, path: str, headers: dict[str, str]
) -> None:
    # WHEN a FHIR client sends a method the path does not declare (Chalice's router answers, in the function)
    response = client.http.patch(path, headers=headers, body="{}")

    # THEN the 405 keeps its Allow header, and its body is an OperationOutcome
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    (issue,) = OperationOutcome.model_validate(json.loads(response.body)).issue
    assert issue.code == "not-supported" and issue.details.coding[0].code == "method_not_allowed"


@sqlite_only
def test_a_json_client_keeps_the_json_405(client: Any) -> None:
    response = client.http.patch("/patients/1", headers=AUTH, body="{}")

    assert response.status_code == 405 and response.json_body["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "accept", [None, "application/json", "*/*", "application/json, application/fhir+json", "text/html"]
)
@sqlite_only
def test_other_clients_keep_the_json_error_body(client: Any, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}

    refused = client.http.get("/patients/1", headers=headers)
    unknown = client.http.get("/nowhere", headers={**headers, **AUTH})

    assert refused.status_code == 401 and refused.json_body["code"] == UNAUTHORIZED_BODY["code"]
    assert unknown.status_code == 404 and unknown.json_body["code"] == ROUTE_NOT_FOUND_BODY["code"]


@pytest.mark.parametrize(
    ("accept", "fhir"),
    [
        ("application/fhir+json", True),
        ("Application/FHIR+JSON; fhirVersion=4.0", True),
        ("application/fhir+json;q=1, application/json;q=0.9", True),
        ("text/html, application/fhir+json", True),
        ("application/json, application/fhir+json", False),  # the first template named decides
        ("application/json", False),
        ("*/*", False),
        ("application/fhir+xml", False),
        ("", False),
        (None, False),
    ],
)
def test_the_template_is_chosen_by_the_first_media_type_with_one(accept: str | None, fhir: bool) -> None:
    assert wants_fhir(accept) is fhir


def test_every_gateway_response_has_a_valid_operation_outcome() -> None:
    codes = {}
    for response_type, response in GATEWAY_RESPONSES.items():
        outcome = OperationOutcome.model_validate(fhir_outcome(response, "req-1"))
        (issue,) = outcome.issue
        assert (
            issue.code in ISSUE_TYPES
            and issue.diagnostics == f"{response.body['message']} (request id req-1)"
        )
        codes[response_type] = (issue.severity, issue.code)

    assert codes == {
        "UNAUTHORIZED": ("error", "login"),
        "ACCESS_DENIED": ("error", "login"),
        "MISSING_AUTHENTICATION_TOKEN": ("error", "not-found"),
        "THROTTLED": ("error", "throttled"),
        "DEFAULT_4XX": ("error", "processing"),
        "DEFAULT_5XX": ("fatal", "exception"),
    }
