"""The FHIR face's schemas in the OpenAPI document: the subset of FHIR R4 this server writes and reads.

Answers are described as this server builds them (``chalicelib.fhir``); FHIR's own models
(``fhir.resources``, R4B) validate them in the tests. The input Patient is open: elements the
model cannot hold are documented as refused (422 ``not-supported``), not forbidden by the schema,
so that such a request reaches the server and gets its OperationOutcome.
"""

from __future__ import annotations

from typing import Any

from chalicelib.fhir.patient import FAMILY_MAX_LENGTH, GIVEN_MAX_COUNT, GIVEN_MAX_LENGTH, IDENTIFIER_SYSTEM
from chalicelib.fhir.search import form_schema
from chalicelib.patients.fields import EMAIL, NAME, PHONE
from chalicelib.validation import VISIBLE_TEXT


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


FHIR_ID = {"type": "string", "pattern": "^[1-9][0-9]*$"}
INSTANT = {"type": "string", "format": "date-time"}


def _telecom_item(system: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["system", "value"],
        "properties": {"system": {"const": system}, "value": value},
    }


def _patient_input() -> dict[str, Any]:
    """The Patient a create or update takes, with the patient fields' own rules on its values."""
    name_text = NAME.json_schema()
    part = {"type": "string", "minLength": 1, "pattern": VISIBLE_TEXT}
    email_item = _telecom_item("email", EMAIL.json_schema())
    phone_item = _telecom_item("phone", {**PHONE.json_schema(), "type": "string"})
    return {
        "type": "object",
        "description": "A FHIR Patient: one `name` (`text`, or `given` and `family`, joined with spaces),"
        " `telecom` with one `email` and at most one `phone`. Any other element is refused with a 422"
        " `not-supported` OperationOutcome, never dropped.",
        "required": ["resourceType", "name", "telecom"],
        "properties": {
            "resourceType": {"const": "Patient"},
            "id": {"type": "string"},
            "meta": {"type": "object"},
            "identifier": {"type": "array", "items": {"type": "object"}},
            "name": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": name_text,
                        "family": {**part, "maxLength": FAMILY_MAX_LENGTH},
                        "given": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": GIVEN_MAX_COUNT,
                            "items": {**part, "maxLength": GIVEN_MAX_LENGTH},
                        },
                    },
                    "anyOf": [{"required": ["text"]}, {"required": ["family"]}, {"required": ["given"]}],
                },
            },
            # One email and at most one phone, in either order: each shape spelled out (cheaper for
            # generators such as schemathesis's than "contains" with counts).
            "telecom": {
                "type": "array",
                "oneOf": [
                    {"prefixItems": [email_item], "minItems": 1, "maxItems": 1},
                    {"prefixItems": [email_item, phone_item], "minItems": 2, "maxItems": 2},
                    {"prefixItems": [phone_item, email_item], "minItems": 2, "maxItems": 2},
                ],
            },
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
    }


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
        "FhirPatientInput": _patient_input(),
        "FhirPatientUpdate": {
            "allOf": [_ref("FhirPatientInput"), {"required": ["id"]}],
            "description": "The whole patient: `id` is the URL's (another is a 422), and a phone left"
            " out is cleared.",
        },
        "FhirSearchForm": form_schema(),
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
