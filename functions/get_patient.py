from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import READ_PATIENT, AuditContext
from chalicelib.errors import PatientNotFound, ValidationFailed
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import ETAG_HEADER, IF_NONE_MATCH_PARAMETER
from chalicelib.http.responses import empty_response, json_response
from chalicelib.patients import service as patients
from chalicelib.patients.preconditions import IF_NONE_MATCH, etag_for, parse_tag_condition
from chalicelib.patients.shapes import patient_json
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.validation import PATIENT_ID


@endpoint(
    "GET",
    "/patients/{patient_id}",
    scope=PATIENTS_READ,
    audit=READ_PATIENT,
    summary="Get a patient",
    description="The `ETag` header carries the patient's version: send it back in `If-Match` to change"
    " or delete only that version, or in `If-None-Match` to get a bodiless 304 while it is current.",
    tag=PATIENTS_TAG,
    path_parameters={"patient_id": PATIENT_ID},
    headers=(IF_NONE_MATCH_PARAMETER,),
    replies={
        200: Reply("The patient", "Patient", headers=ETAG_HEADER),
        304: Reply("The patient is still the version named in If-None-Match", None, headers=ETAG_HEADER),
    },
    errors=(PatientNotFound, ValidationFailed),
)
def get_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    if_none_match = parse_tag_condition(IF_NONE_MATCH, request.headers.get(IF_NONE_MATCH))
    patient = patients.get_patient(
        ReadTransaction(audit=audit),
        patient_id,
        if_none_match,
        durable_audit=bootstrap.settings().durable_read_audit,
    )
    headers = {"ETag": etag_for(patient.id, patient.version)}
    if if_none_match is not None and if_none_match.matches_weakly(patient.id, patient.version):
        return empty_response(304, headers)
    return json_response(patient_json(patient), headers=headers)
