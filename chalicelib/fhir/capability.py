"""The CapabilityStatement of ``GET /fhir/metadata``: exactly what this FHIR face implements."""

from __future__ import annotations

from typing import Any

from chalicelib.fhir.answers import FHIR_VERSION
from chalicelib.fhir.search import GET_PARAMETERS, POST_PARAMETERS
from chalicelib.scopes import PATIENTS_READ, PATIENTS_WRITE, SMART_SCOPES

# The scopes a token may carry, as the authorizer maps them (chalicelib.scopes): SMART on FHIR v2
# and v1, then this API's own.
ADVERTISED_SCOPES = (*SMART_SCOPES, PATIENTS_READ, PATIENTS_WRITE)
# Fixed: the statement describes the code, which changes only with a deployment.
RELEASE_DATE = "2026-12-07"


def capability_statement(base: str) -> dict[str, Any]:
    search_parameters = {**GET_PARAMETERS, **POST_PARAMETERS}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "publisher": "Telehealth patient API",
        "kind": "instance",
        "implementation": {"description": "Telehealth patient API, FHIR R4 face", "url": base},
        "software": {"name": "telehealth-api"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Patients only, the same as the JSON API's /patients: name (as"
                " HumanName.text), email and phone (as telecom), and the id (as Patient.id and an"
                " identifier). Search parameters that carry patient data are accepted only in the form"
                " body of POST /fhir/Patient/_search.",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Authorization: Bearer <token> (a signed JWT or an API token)."
                    " Scopes: " + ", ".join(ADVERTISED_SCOPES) + ". Reads and searches need Patient read"
                    " (rs / read / patients:read); create, update and delete need Patient write (cud /"
                    " write / patients:write). A token that may only write is never shown patient data.",
                },
                "resource": [
                    {
                        "type": "Patient",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
                        "interaction": [
                            {"code": code}
                            for code in ("read", "vread", "update", "delete", "create", "search-type")
                        ],
                        "versioning": "versioned-update",
                        "readHistory": False,
                        "updateCreate": False,
                        "conditionalCreate": True,
                        "conditionalRead": "not-supported",
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": documentation}
                            for name, (kind, documentation) in search_parameters.items()
                        ],
                    }
                ],
            }
        ],
    }
