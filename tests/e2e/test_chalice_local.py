"""The API over real HTTP: ``chalice local`` in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.schema import upgrade_database
from scripts.api_process import free_port, running_server, stock_chalice_command
from tests.integration.test_concurrency import run_together

DEV_TOKEN = {"Authorization": "Bearer secret-token-123"}
UNAUTHORIZED = {"code": "unauthorized", "message": "Missing or invalid bearer token"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stock ``chalice local``, exactly as a user starts it, on a migrated SQLite file."""
    directory = tmp_path_factory.mktemp("e2e")
    database = directory / "telehealth.db"
    upgrade_database(f"sqlite:///{database}")
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "API_TOKEN_SHA256", "APP_STAGE")}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    port = free_port()
    with running_server(stock_chalice_command(port), port, env, directory / "chalice-local.log"):
        yield f"http://127.0.0.1:{port}"
    assert b"Traceback" not in (directory / "chalice-local.log").read_bytes()


def call(method: str, url: str, body: Any = None, headers: dict[str, str] = DEV_TOKEN) -> requests.Response:
    data = None if body is None else json.dumps(body)
    hdrs = {**headers, "Content-Type": "application/json"} if data is not None else headers
    return requests.request(method, url, data=data, headers=hdrs, timeout=10)


def test_every_endpoint_over_http(base_url: str) -> None:
    created = call("POST", f"{base_url}/patients", {"name": "John Doe", "email": "john@example.com"})
    assert created.status_code == 201
    assert created.json()["message"] == "Patient created successfully"
    patient_url = f"{base_url}/patients/{created.json()['patient']['id']}"

    fetched = call("GET", patient_url)
    assert fetched.status_code == 200 and fetched.json()["email"] == "john@example.com"
    assert fetched.headers["Content-Type"] == "application/json"

    updated = call("PUT", patient_url, {"phone": "987-654-3210"})
    assert updated.status_code == 200 and updated.json()["patient"]["phone"] == "987-654-3210"

    listed = call("GET", f"{base_url}/patients?page=1&per_page=10")
    assert listed.status_code == 200 and listed.json()["total"] >= 1

    deleted = call("DELETE", patient_url)
    assert deleted.json() == {"message": "Patient deleted successfully"}
    assert call("GET", patient_url).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Token secret-token-123"},
    ],
)
def test_refusals_are_401_json_over_http(base_url: str, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/patients"), ("POST", "/patients"), ("DELETE", "/patients/1")):
        response = call(method, f"{base_url}{path}", headers=headers)

        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["Content-Type"] == "application/json"


def test_client_errors_over_http(base_url: str) -> None:
    bad_json = requests.post(
        f"{base_url}/patients",
        data="{nope",
        headers={**DEV_TOKEN, "Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "malformed_request"
    assert call("GET", f"{base_url}/patients/not-a-number").status_code == 404
    assert call("GET", f"{base_url}/patients?per_page=1000").status_code == 400


def test_sixteen_concurrent_creates_over_http(base_url: str) -> None:
    responses = run_together(
        16, lambda i: call("POST", f"{base_url}/patients", {"name": "Race", "email": "race-e2e@example.com"})
    )

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 15}
