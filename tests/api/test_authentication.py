"""The bearer-token authorizer: every refusal is a 401 with the JSON error body."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.http.gateway_responses import UNAUTHORIZED_BODY
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import AUTH, TEST_TOKEN

ROUTES = [
    ("get", "/patients"),
    ("post", "/patients"),
    ("get", "/patients/1"),
    ("put", "/patients/1"),
    ("delete", "/patients/1"),
]
REFUSED_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Basic {TEST_TOKEN}"},
    {"Authorization": TEST_TOKEN},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TEST_TOKEN}x"},
    {"Authorization": "Bearer secret-token-123"},  # dev default is replaced by configured tokens
    # RFC 6750's b64token and nothing else: str.strip() once let these trail the token.
    *(
        {"Authorization": f"Bearer {TEST_TOKEN}{stray}"}
        for stray in ("\x0b", "\x0c", "\x1c", "\x85", "\xa0", " ")
    ),
    {"Authorization": f" Bearer {TEST_TOKEN}"},
    {"Authorization": f"Bearer\t{TEST_TOKEN}"},
]


@pytest.mark.parametrize("headers", REFUSED_HEADERS)
@pytest.mark.parametrize("method, path", ROUTES)
@sqlite_only
def test_refused_requests_get_401_json(client: Any, method: str, path: str, headers: dict[str, str]) -> None:
    response = getattr(client.http, method)(path, headers={**headers, "Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.json_body == {**UNAUTHORIZED_BODY, "request_id": response.json_body["request_id"]}


def test_scheme_is_case_insensitive(client: Any) -> None:
    response = client.http.get("/patients", headers={"Authorization": f"bearer {TEST_TOKEN}"})

    assert response.status_code == 200


def test_every_configured_token_works_for_rotation(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.bootstrap import reset_for_tests

    monkeypatch.setenv("API_TOKENS", f"old:{TEST_TOKEN},new:next-token")
    reset_for_tests()

    assert client.http.get("/patients", headers=AUTH).status_code == 200
    assert client.http.get("/patients", headers={"Authorization": "Bearer next-token"}).status_code == 200


@sqlite_only
@pytest.mark.parametrize(
    "authorization", [f"Bearer {TEST_TOKEN}", f"bearer   {TEST_TOKEN}", f"BEARER {TEST_TOKEN}"]
)
def test_the_scheme_in_any_case_then_spaces_then_the_token_is_accepted(
    client: Any, authorization: str
) -> None:
    assert client.http.get("/patients", headers={"Authorization": authorization}).status_code == 200


@sqlite_only
def test_principal_reaches_the_handler_context(client: Any) -> None:
    from chalicelib.access.identity import identify
    from chalicelib.bootstrap import auth_settings

    identity = identify(f"Bearer {TEST_TOKEN}", auth_settings())
    assert identity is not None and identity.principal == "suite"
    assert identify("Bearer nope", auth_settings()) is None


@sqlite_only
def test_api_gateway_caches_an_authorizer_answer_for_60_seconds_not_its_default_300(client: Any) -> None:
    from chalice.deploy.swagger import TemplatedSwaggerGenerator

    from app import app

    document = TemplatedSwaggerGenerator().generate_swagger(app)

    authorizer = document["securityDefinitions"]["bearer_token"]["x-amazon-apigateway-authorizer"]
    assert authorizer["authorizerResultTtlInSeconds"] == 60
