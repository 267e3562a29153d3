"""The FHIR face's schemas in the OpenAPI document: the subset of FHIR R4 this server writes and reads.

Answers are described as this server builds them (``chalicelib.fhir``); FHIR's own models
(``fhir.resources``, R4B) validate them in the tests. The input Patient is open: elements the
model cannot hold are documented as refused (422 ``not-supported``), not forbidden by the schema,
so that such a request reaches the server and gets its OperationOutcome.
"""

from __future__ import annotations

from typing import Any

from chalicelib.fhir.patient import IDENTIFIER_SYSTEM
from chalicelib.fhir.search import FORM_PARAMETERS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


FHIR_ID = {"type": "string", "pattern": "^[1-9][0-9]*$"}
INSTANT = {"type": "string", "format": "date-time"}


def fhir_schemas() -> dict[str, Any]:
    return {
        "FhirPatient": {
            "type": "object",
            "description": "A FHIR R4 Patient as this server writes it.",
            "required": ["resourceType", "id", "meta", "identifier", "name", "telecom"],
            "properties": {
                "resourceType": {"const": "Patient"},
                "id": FHIR_ID,
                "meta": {
                    "type": "object",
                    "required": ["versionId", "lastUpdated"],
                    "properties": {"versionId": FHIR_ID, "lastUpdated": INSTANT},
                },
                "identifier": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["system", "value"],
                        "properties": {"system": {"const": IDENTIFIER_SYSTEM}, "value": FHIR_ID},
                    },
                },
                "name": {
                    "type": "array",
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string"}},
                    },
                },
                "telecom": {"type": "array", "items": _ref("FhirContactPoint")},
            },
        },
        "FhirContactPoint": {
            "type": "object",
            "required": ["system", "value"],
            "properties": {"system": {"enum": ["email", "phone"]}, "value": {"type": "string"}},
        },
        "FhirPatientInput": {
            "type": "object",
            "description": "A FHIR Patient: `name` (one HumanName: `text`, or `given` and `family`, joined),"
            " `telecom` (one `email`, at most one `phone`). On update, `id` must be the URL's. Any other"
            " element is refused with a 422 `not-supported` OperationOutcome.",
            "required": ["resourceType"],
            "properties": {
                "resourceType": {"const": "Patient"},
                "id": {"type": "string"},
                "name": {
                    "type": "array",
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "family": {"type": "string"},
                            "given": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
                "telecom": {"type": "array", "items": _ref("FhirContactPoint")},
            },
            "examples": [
                {
                    "resourceType": "Patient",
                    "name": [{"text": "Jane Doe"}],
                    "telecom": [
                        {"system": "email", "value": "jane.doe@example.com"},
                        {"system": "phone", "value": "+1 415 555 0100"},
                    ],
                }
            ],
        },
        "FhirSearchForm": {
            "type": "object",
            "description": "FHIR search parameters, in the form body: they carry patient data, which"
            " never goes in a URL.",
            "properties": {name: {"type": "string"} for name in FORM_PARAMETERS},
            "additionalProperties": False,
        },
        "FhirBundle": {
            "type": "object",
            "description": "A searchset Bundle: its `next` link is an opaque continuation (no patient data).",
            "required": ["resourceType", "type", "link", "entry"],
            "properties": {
                "resourceType": {"const": "Bundle"},
                "type": {"const": "searchset"},
                "link": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["relation", "url"],
                        "properties": {"relation": {"enum": ["self", "next"]}, "url": {"type": "string"}},
                    },
                },
                "entry": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["fullUrl", "resource"],
                        "properties": {"fullUrl": {"type": "string"}, "resource": _ref("FhirPatient")},
                    },
                },
            },
        },
        "FhirCapabilityStatement": {
            "type": "object",
            "required": ["resourceType", "status", "kind", "fhirVersion", "format", "rest"],
            "properties": {
                "resourceType": {"const": "CapabilityStatement"},
                "fhirVersion": {"const": "4.0.1"},
            },
        },
        "OperationOutcome": {
            "type": "object",
            "description": "Every error of the FHIR face: FHIR's issue code, and the request's id in"
            " `diagnostics`.",
            "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"const": "OperationOutcome"},
                "issue": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["severity", "code"],
                        "properties": {
                            "severity": {"enum": ["fatal", "error", "warning", "information"]},
                            "code": {"type": "string"},
                            "diagnostics": {"type": "string"},
                            "expression": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }
