"""FHIR requests through chalice.test.Client, and every answer checked by FHIR's own models.

``fhir.resources`` ships R4B (4.3), the closest release it has to R4 (4.0.1): its Patient, Bundle,
OperationOutcome and CapabilityStatement models validate what this server writes.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from tests.helpers.tokens import AUTH

FHIR_JSON = "application/fhir+json"
FHIR_AUTH = {**AUTH, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
MODELS = {
    "Patient": Patient,
    "Bundle": Bundle,
    "OperationOutcome": OperationOutcome,
    "CapabilityStatement": CapabilityStatement,
}


def fhir_patient(name: str, email: str, phone: str | None = None) -> dict[str, Any]:
    telecom = [{"system": "email", "value": email}]
    if phone is not None:
        telecom.append({"system": "phone", "value": phone})
    return {"resourceType": "Patient", "name": [{"text": name}], "telecom": telecom}


def fhir_call(
    client: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    raw = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return client.http.request(method, path, headers={**FHIR_AUTH, **(headers or {})}, body=raw or b"")


def validated(response: Any, resource_type: str) -> dict[str, Any]:
    """The answer's resource, once FHIR's R4B model of ``resource_type`` accepted it."""
    assert response.headers["Content-Type"].startswith(FHIR_JSON), response.headers
    body = json.loads(response.body)
    assert body["resourceType"] == resource_type, body
    MODELS[resource_type].model_validate(body)
    return dict(body)


def outcome(response: Any, status: int, code: str) -> str:
    """The OperationOutcome's diagnostics, once it is validated and says ``code`` with ``status``."""
    assert response.status_code == status, response.body
    body = validated(response, "OperationOutcome")
    issue = body["issue"][0]
    assert issue["code"] == code, issue
    return str(issue["diagnostics"])


def telecom_of(resource: dict[str, Any]) -> dict[str, str]:
    return {point["system"]: point["value"] for point in resource.get("telecom", [])}
