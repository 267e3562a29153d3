"""Fuzz every operation of the served OpenAPI document with schemathesis, in-process.

Schemathesis generates valid and invalid requests from the document (fixed
seed, small budget); each is sent through ``chalice.test.Client`` (Chalice is
neither WSGI nor ASGI) with the suite's token, and the answer must be no 5xx
and match the document: status code, content type, headers and body schema,
and invalid input must be refused. Each request to a protected route is sent
again without a token and with a wrong one, and both must be the documented 401.
"""

from __future__ import annotations

import json
import time
from typing import Any

import chalice.test
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import seed as fixed_seed
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.http.gateway_responses import UNAUTHORIZED_BODY
from tests.helpers.tokens import AUTH, JSON_AUTH

SEED = 20261125
# Per operation and database, beside schemathesis's coverage cases: ~3,800 requests, ~13 s in all here.
EXAMPLES_PER_OPERATION = 80
BASE_URL = "http://testserver"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SEEDED_PATIENTS = 3
REFUSED_CREDENTIALS = [{}, {"Authorization": "Bearer not-the-token"}]


@pytest.fixture
def fuzz_client(client: chalice.test.Client) -> chalice.test.Client:
    """The API on an empty database of either kind, but for a few patients the generated ids can find."""
    for number in range(1, SEEDED_PATIENTS + 1):
        patient = {"name": f"Seeded {number}", "email": f"seeded{number}@example.com"}
        created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(patient))
        assert created.status_code == 201, created.body
    return client


def served_document() -> dict[str, Any]:
    """The document GET /openapi.json serves, built here: ``schema.parametrize`` needs it at collection."""
    from app import app
    from chalicelib.http.openapi import document_json

    return dict(json.loads(document_json(app)))


# Generated requests include query parameters the document does not declare: every route refuses them.
schema = schemathesis.openapi.from_dict(served_document())


def send(client: chalice.test.Client, case: Any, headers: dict[str, str]) -> schemathesis.Response:
    """Send ``case`` as ``requests`` would put it on the wire, through the Chalice test client."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
    ).prepare()
    for name in headers.keys() - (kwargs.get("headers") or {}).keys():
        prepared.headers.pop(name, None)  # a header the case removed stays removed
    body = prepared.body or b""
    started = time.perf_counter()
    answer = client.http.request(
        prepared.method or "GET",
        prepared.path_url,
        headers=dict(prepared.headers),
        body=body.encode() if isinstance(body, str) else body,
    )
    return schemathesis.Response(
        status_code=answer.status_code,
        headers={name.lower(): [value] for name, value in answer.headers.items()},
        content=answer.body,
        request=prepared,
        elapsed=time.perf_counter() - started,
        verify=True,
    )


@schema.parametrize()
@fixed_seed(SEED)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Any, fuzz_client: chalice.test.Client) -> None:
    if case.method.upper() != case.operation.method.upper():
        # A method the document does not declare for this path: Chalice's router answers it (in the
        # cloud through the API's ANY method), OPTIONS included.
        assert send(fuzz_client, case, AUTH).status_code == 405
        return
    response = send(fuzz_client, case, AUTH)
    case.validate_response(response, checks=CHECKS)

    if case.operation.definition.raw.get("security"):
        for credentials in REFUSED_CREDENTIALS:
            refused = send(fuzz_client, case, credentials)

            assert refused.status_code == 401, (credentials, refused.status_code, refused.content)
            assert json.loads(refused.content).items() >= UNAUTHORIZED_BODY.items()
            case.validate_response(refused, checks=[status_code_conformance, response_schema_conformance])
