"""The API's metrics: one EMF line per request on stdout, valid EMF, low-cardinality dimensions, no
patient data and no token in any of it."""

from __future__ import annotations

import json
from typing import Any

import chalice.test
import pytest

from chalicelib.bootstrap import reset_for_tests
from chalicelib.observability import metric_catalogue as catalogue
from tests.helpers.api import app_routes
from tests.helpers.databases import audit_trail_offline
from tests.helpers.environment import configure_environment
from tests.helpers.metrics import emf_lines, emf_problems, emitted_metrics
from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT
from tests.helpers.tokens import AUTH, JSON_AUTH, TEST_TOKEN

# Strings that cannot turn up in a metrics line by chance.
WRONG_TOKEN = "wrong-token-8c1f2e"
READ_ONLY_TOKEN = "read-only-token-51a9"


@pytest.fixture
def stdout_lines(capsys: pytest.CaptureFixture[str], metrics_on: None) -> Any:
    """The EMF lines written to stdout so far in the test (each call reads the new ones)."""
    capsys.readouterr()
    return lambda: emf_lines(capsys.readouterr().out)


def dimension_values(line: dict[str, Any]) -> dict[str, str]:
    names = {n for d in line["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"] for n in s}
    return {name: line[name] for name in names}


def test_a_request_writes_one_valid_emf_line_by_route_template_and_status_class(
    client: chalice.test.Client, stdout_lines: Any
) -> None:
    # WHEN a protected route answers 404 for one id
    response = client.http.get("/patients/424242", headers=AUTH)

    # THEN one EMF line, valid, counts it under the route's template and its status class
    (line,) = stdout_lines()
    assert response.status_code == 404
    assert emf_problems(line) == []
    assert dimension_values(line) == {
        "Service": "telehealth-api-dev",
        "Route": "/patients/{patient_id}",
        "StatusClass": "4xx",
    }
    metrics = emitted_metrics([line])
    assert metrics["Requests"] == [1]
    assert len(metrics["Latency"]) == 1 and metrics["Latency"][0] >= 0
    assert {d["Namespace"] for d in line["_aws"]["CloudWatchMetrics"]} == {"TelehealthApi"}
    # The request's own access line carries them: one line per request
    assert (line["logger"], line["message"], line["status"]) == ("telehealth.access", "request", 404)
    assert line["route"] == "/patients/{patient_id}"
    # Each metric under exactly the dimension sets the catalogue declares for it
    declared = {m.name: [list(s) for s in m.dimension_sets] for m in catalogue.METRICS}
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            assert directive["Dimensions"] == declared[metric["Name"]]


def test_refusals_are_counted_authorizer_403_and_audit_unavailable(
    client: chalice.test.Client, configured_app: str, monkeypatch: pytest.MonkeyPatch, stdout_lines: Any
) -> None:
    configure_environment(
        monkeypatch,
        DATABASE_URL=configured_app,
        API_TOKENS=f"suite:{TEST_TOKEN},reader[patients:read]:{READ_ONLY_TOKEN}",
    )

    # WHEN a token is refused, a read-only token writes, and the audit trail cannot be written
    refused = client.http.get("/patients", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    forbidden = client.http.post(
        "/patients",
        headers={"Authorization": f"Bearer {READ_ONLY_TOKEN}", "Content-Type": "application/json"},
        body=json.dumps(DISTINCTIVE_PATIENT),
    )
    with audit_trail_offline():
        unavailable = client.http.get("/patients", headers=AUTH)

    # THEN each has its count: the authorizer's line, then one line per request that reached the function
    assert (refused.status_code, forbidden.status_code, unavailable.status_code) == (401, 403, 503)
    authorizer_line, forbidden_line, unavailable_line = stdout_lines()
    assert emitted_metrics([authorizer_line]) == {"AuthorizerRefusals": [1]}
    assert emitted_metrics([forbidden_line])["Forbidden"] == [1]
    assert forbidden_line["StatusClass"] == "4xx"
    assert emitted_metrics([unavailable_line])["AuditUnavailable"] == [1]
    assert emitted_metrics([unavailable_line])["ServerErrors"] == [1]
    assert unavailable_line["Route"] == "/patients"
    for line in (authorizer_line, forbidden_line, unavailable_line):
        assert emf_problems(line) == []


def test_no_patient_data_or_token_in_any_metrics_line(client: chalice.test.Client, stdout_lines: Any) -> None:
    # WHEN patient data and tokens travel in bodies, paths, queries and headers, right and wrong
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))
    patient_id = created.json_body["patient"]["id"]
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    client.http.get(f"/patients/{DISTINCTIVE_PATIENT['email']}", headers=AUTH)
    client.http.get(f"/patients?access_token={TEST_TOKEN}&name={DISTINCTIVE_PATIENT['name']}", headers=AUTH)
    client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps({"name": "Zelda Q."}))
    client.http.get("/patients", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({**DISTINCTIVE_PATIENT, "phone": 12}))
    client.http.delete(f"/patients/{patient_id}", headers=AUTH)

    # THEN every line is valid EMF, names routes only by their template, and holds none of it
    lines = stdout_lines()
    assert len(lines) == 8
    templates = {path for path, _method in app_routes()}
    for line in lines:
        assert emf_problems(line) == []
        assert line.get("Route", "/patients") in templates
        written = json.dumps(line).lower()
        for secret in (*DISTINCTIVE_FRAGMENTS, TEST_TOKEN, WRONG_TOKEN):
            assert secret.lower() not in written, secret


def test_metrics_off_writes_no_line(
    client: chalice.test.Client, monkeypatch: pytest.MonkeyPatch, stdout_lines: Any
) -> None:
    monkeypatch.setenv("METRICS", "off")
    reset_for_tests()

    client.http.get("/patients/1", headers=AUTH)

    assert stdout_lines() == []
