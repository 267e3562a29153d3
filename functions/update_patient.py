from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import UPDATE_PATIENT, AuditContext
from chalicelib.errors import (
    DuplicateEmail,
    PatientNotFound,
    PreconditionFailed,
    UnacceptableValue,
    ValidationFailed,
)
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import ETAG_HEADER, IF_MATCH_PARAMETER
from chalicelib.http.requests import read_json_object, request_id_of, scopes_of
from chalicelib.http.responses import json_response
from chalicelib.patients import service as patients
from chalicelib.patients.preconditions import IF_MATCH, etag_for, parse_tag_condition
from chalicelib.patients.shapes import patient_change_json
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.validation import PATIENT_ID


@endpoint(
    "PUT",
    "/patients/{patient_id}",
    scope=PATIENTS_WRITE,
    audit=UPDATE_PATIENT,
    summary="Change some of a patient's fields",
    description="With `If-Match`, only while the patient is still the version named there (its `ETag`);"
    " otherwise 412 and nothing changes.",
    tag=PATIENTS_TAG,
    path_parameters={"patient_id": PATIENT_ID},
    request_body="PatientUpdate",
    headers=(IF_MATCH_PARAMETER,),
    replies={
        200: Reply(
            "The patient as now stored; to a token without `patients:read`, no name, email or phone",
            "PatientUpdated",
            headers=ETAG_HEADER,
        )
    },
    errors=(PatientNotFound, ValidationFailed, UnacceptableValue, DuplicateEmail, PreconditionFailed),
)
def update_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    if_match = parse_tag_condition(IF_MATCH, request.headers.get(IF_MATCH))
    change = patients.update_patient(
        UnitOfWork(audit=audit),
        patient_id,
        read_json_object(request),
        if_match,
        settings=bootstrap.patient_settings(),
        correlation_id=request_id_of(request),
    )
    return json_response(
        patient_change_json("Patient updated successfully", change, scopes_of(request)),
        headers={"ETag": etag_for(change.patient.id, change.patient.version)},
    )
