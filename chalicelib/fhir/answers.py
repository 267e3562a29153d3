"""What every FHIR answer carries: ``application/fhir+json``, and links on this server's base.

The base is ``…/fhir`` on the path the client called, so API Gateway's stage prefix (``/api``)
stays in every link, and absolute when the request names its host.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from chalice.app import Request, Response

from chalicelib.http.endpoints import FHIR_JSON
from chalicelib.http.requests import scopes_of
from chalicelib.http.responses import json_response
from chalicelib.patients.idempotency import REPLAYED
from chalicelib.patients.shapes import shows_patient_data

if TYPE_CHECKING:
    from chalicelib.storage.models import Patient, PatientRecord

FHIR_VERSION = "4.0.1"
FHIR_PREFIX = "/fhir"
# Where the JSON and FHIR faces agree on a media type: every FHIR answer says fhir+json with the
# FHIR version (R4), which Accept: application/json and _format=json accept as JSON.
FHIR_CONTENT_TYPE = f"{FHIR_JSON}; fhirVersion=4.0"
# A host name or address and port, nothing else: any other Host makes the links relative.
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body, status, {**(headers or {}), "Content-Type": FHIR_CONTENT_TYPE})


def empty_fhir_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """A bodiless answer (a write by a token that may not read patients, a 304)."""
    return json_response("", status, headers)


def base_url(request: Request) -> str:
    """This FHIR server's base: ``[scheme://host][/stage]/fhir``."""
    called = (request.context or {}).get("path") or FHIR_PREFIX
    at = called.find(FHIR_PREFIX + "/")
    prefix = called[:at] if at >= 0 else ""
    headers: Any = request.headers or {}
    host = headers.get("host")
    if not host or not _HOST.fullmatch(host):
        return prefix + FHIR_PREFIX
    forwarded = (headers.get("x-forwarded-proto") or "http").split(",", 1)[0].strip().lower()
    scheme = "https" if forwarded == "https" else "http"
    return f"{scheme}://{host}{prefix}{FHIR_PREFIX}"


def weak_etag(version: int) -> str:
    return f'W/"{version}"'


def version_headers(base: str, patient_id: int, version: int, updated_at: datetime) -> dict[str, str]:
    """ETag, Last-Modified and the Location of this version."""
    return {
        "ETag": weak_etag(version),
        "Last-Modified": format_datetime(updated_at.replace(tzinfo=UTC), usegmt=True),
        "Location": f"{base}/Patient/{patient_id}/_history/{version}",
    }


def patient_answer(
    request: Request, patient: Patient | PatientRecord, status: int, *, replayed: bool = False
) -> Response:
    """A patient written or matched, as FHIR answers it: the Patient, or no body to a token that
    may not read patients (minimum necessary, as the JSON API's receipts) or that asked for none
    (``Prefer: return=minimal``)."""
    from chalicelib.fhir.patient import patient_resource

    headers = version_headers(base_url(request), patient.id, patient.version, patient.updated_at)
    if replayed:
        headers[REPLAYED] = "true"
    minimal = (request.headers.get("prefer") or "").replace(" ", "").lower() == "return=minimal"
    if minimal or not shows_patient_data(scopes_of(request)):
        return empty_fhir_response(status, headers)
    return fhir_response(patient_resource(patient), status, headers)
