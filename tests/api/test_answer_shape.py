"""Answers the gateway and Chalice give by themselves (405, 401, unknown routes) have our error shape.

Each carries the JSON error body with a ``request_id``, ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff``, as every answer of a view does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.errors import DomainError
from chalicelib.http.gateway_responses import CODES_BEFORE_ANY_VIEW, ROUTE_NOT_FOUND_BODY, UNAUTHORIZED_BODY
from tests.helpers.tokens import AUTH

SAFETY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
BEARER_CHALLENGE = 'Bearer realm="telehealth-api"'

# (method, path, route): a method the route does not declare, including ones http.server has no
# do_<METHOD> for; the local server hands every method token to the same gateway.
UNDECLARED = [
    ("PATCH", "/patients/1", "/patients/{patient_id}"),
    ("POST", "/patients/1", "/patients/{patient_id}"),
    ("PUT", "/patients", "/patients"),
    ("DELETE", "/audit", "/audit"),
    ("POST", "/docs", "/docs"),
    ("PUT", "/openapi.json", "/openapi.json"),
    ("HEAD", "/health", "/health"),
    ("OPTIONS", "/patients/1", "/patients/{patient_id}"),
    ("TRACE", "/notifications", "/notifications"),
    ("CONNECT", "/notifications/1", "/notifications/{notification_id}"),
    ("FOO", "/patients/1/notifications", "/patients/{patient_id}/notifications"),
]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """These answers never reach the database: one store is enough."""
    return sqlite_url


def declared_methods(route: str) -> set[str]:
    from app import app

    return set(app.routes[route])


def assert_error_shape(response: Any, code: str) -> dict[str, Any]:
    body = dict(response.json_body)
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert re.fullmatch(r"[0-9a-f-]{36}", body["request_id"]), body
    assert set(body) <= {"code", "message", "request_id", "field"}
    assert response.headers["Content-Type"] == "application/json"
    for name, value in SAFETY_HEADERS.items():
        assert response.headers[name] == value, name
    return body


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["anonymous", "with-token"])
@pytest.mark.parametrize(("method", "path", "route"), UNDECLARED)
def test_an_undeclared_method_is_405_with_allow_in_our_shape(
    client: Any, method: str, path: str, route: str, headers: dict[str, str]
) -> None:
    response = client.http.request(method, path, headers=headers)

    assert response.status_code == 405
    assert_error_shape(response, "method_not_allowed")
    assert {name.strip() for name in response.headers["Allow"].split(",")} == declared_methods(route)


def test_a_declared_method_still_reaches_its_view(client: Any) -> None:
    assert client.http.get("/health").status_code == 200


def test_a_missing_token_is_401_with_a_bearer_challenge(client: Any) -> None:
    response = client.http.get("/patients")

    assert response.status_code == 401
    body = assert_error_shape(response, "unauthorized")
    assert body == {**UNAUTHORIZED_BODY, "request_id": body["request_id"]}
    assert response.headers["WWW-Authenticate"] == BEARER_CHALLENGE


@pytest.mark.parametrize("authorization", ["Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer "])
def test_a_refused_token_is_401_saying_invalid_token(client: Any, authorization: str) -> None:
    response = client.http.get("/patients/1", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert_error_shape(response, "unauthorized")
    assert response.headers["WWW-Authenticate"] == f'{BEARER_CHALLENGE}, error="invalid_token"'


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["anonymous", "with-token"])
def test_an_unknown_route_is_404_in_our_shape_without_amazon_error_type(
    client: Any, headers: dict[str, str]
) -> None:
    response = client.http.get("/patients/1/notes", headers=headers)

    assert response.status_code == 404
    body = assert_error_shape(response, "route_not_found")
    assert body == {**ROUTE_NOT_FOUND_BODY, "request_id": body["request_id"]}
    assert not {name.lower() for name in response.headers} & {"x-amzn-errortype", "www-authenticate"}


def test_gateway_answers_name_the_request_id_they_send_in_x_amzn_requestid(client: Any) -> None:
    for response in (client.http.get("/patients"), client.http.get("/nowhere")):
        assert response.json_body["request_id"] == response.headers["x-amzn-RequestId"]


def test_each_answer_has_a_request_id_of_its_own(client: Any) -> None:
    ids = {client.http.request("PATCH", "/patients/1").json_body["request_id"] for _ in range(3)}

    assert len(ids) == 3


def every_error_code() -> set[str]:
    def subclasses(cls: type[DomainError]) -> set[type[DomainError]]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    return {error.code for error in subclasses(DomainError)} | set(CODES_BEFORE_ANY_VIEW)


def test_every_code_an_answer_can_carry_is_in_the_readme_and_the_document(client: Any) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    errors_section = readme.split("### Errors", 1)[1].split("\n## ", 1)[0]
    document = client.http.get("/openapi.json").body.decode()

    for code in sorted(every_error_code()):
        assert f"`{code}`" in errors_section, code
        assert f"`{code}`" in document or f'"{code}"' in document, code


def test_readme_says_how_405_and_401_answer() -> None:
    readme = Path(PROJECT_ROOT / "README.md").read_text()

    assert "Allow" in readme and "405" in readme
    assert "WWW-Authenticate" in readme
