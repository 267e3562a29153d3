from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import CREATE_PATIENT, AuditContext
from chalicelib.errors import (
    DuplicateEmail,
    IdempotencyKeyReused,
    ServiceUnavailable,
    UnacceptableValue,
    ValidationFailed,
)
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import ETAG_HEADER, IDEMPOTENCY_KEY_PARAMETER
from chalicelib.http.requests import principal_of, read_json_object, request_id_of, scopes_of
from chalicelib.http.responses import json_response
from chalicelib.patients import service as patients
from chalicelib.patients.idempotency import IDEMPOTENCY_KEY, REPLAYED, idempotency_key
from chalicelib.patients.preconditions import etag_for
from chalicelib.patients.shapes import patient_change_json
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork


@endpoint(
    "POST",
    "/patients",
    scope=PATIENTS_WRITE,
    audit=CREATE_PATIENT,
    summary="Create a patient",
    description="With an `Idempotency-Key`, a retry of the same body by the same token within 24 hours"
    " answers the first create again (same status, same body, same id, `Idempotent-Replayed: true`)"
    " instead of creating a second patient; the same key with another body is a 422.",
    tag=PATIENTS_TAG,
    request_body="PatientCreate",
    headers=(IDEMPOTENCY_KEY_PARAMETER,),
    replies={
        201: Reply(
            "The patient as stored; to a token without `patients:read`, no name, email or phone",
            "PatientCreated",
            headers={
                **ETAG_HEADER,
                REPLAYED: {
                    "description": "`true` when this answers an earlier request with the same key.",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
            links={
                "SearchByEmail": {
                    "operationId": "search_patients",
                    "requestBody": {"email": "$response.body#/patient/email"},
                    "description": "Find the patient again by its email.",
                },
                "SearchByName": {
                    "operationId": "search_patients",
                    "requestBody": {"name": "$response.body#/patient/name"},
                    "description": "Find the patient again by its name.",
                },
            },
        )
    },
    # ServiceUnavailable: the Idempotency-Key could not be claimed (chalicelib.patients.idempotency).
    errors=(ValidationFailed, UnacceptableValue, DuplicateEmail, IdempotencyKeyReused, ServiceUnavailable),
)
def create_patient(request: Request, *, audit: AuditContext) -> Response:
    payload = read_json_object(request)
    settings = bootstrap.patient_settings()
    raw_key = request.headers.get(IDEMPOTENCY_KEY)
    key = idempotency_key(principal_of(request), raw_key, payload, settings.idempotency_key_secret)
    change = patients.create_patient(
        UnitOfWork(audit=audit),
        payload,
        key,
        settings=settings,
        correlation_id=request_id_of(request),
    )
    headers = {"ETag": etag_for(change.patient.id, change.patient.version)}
    if change.replayed:
        headers[REPLAYED] = "true"
    body = patient_change_json("Patient created successfully", change, scopes_of(request))
    return json_response(body, status=201, headers=headers)
