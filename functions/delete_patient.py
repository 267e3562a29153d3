from chalice.app import Request, Response

from chalicelib.audit.recording import DELETE_PATIENT, AuditContext
from chalicelib.errors import PatientNotFound, PreconditionFailed, ValidationFailed
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.openapi_headers import IF_MATCH_PARAMETER
from chalicelib.http.responses import json_response
from chalicelib.patients import service as patients
from chalicelib.patients.preconditions import IF_MATCH, parse_tag_condition
from chalicelib.scopes import PATIENTS_WRITE
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.validation import PATIENT_ID


@endpoint(
    "DELETE",
    "/patients/{patient_id}",
    scope=PATIENTS_WRITE,
    audit=DELETE_PATIENT,
    summary="Delete a patient",
    description="With `If-Match`, only while the patient is still the version named there (its `ETag`);"
    " otherwise 412 and nothing changes.",
    tag=PATIENTS_TAG,
    path_parameters={"patient_id": PATIENT_ID},
    headers=(IF_MATCH_PARAMETER,),
    replies={200: Reply("Deleted", "PatientDeleted")},
    errors=(PatientNotFound, ValidationFailed, PreconditionFailed),
)
def delete_patient(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    if_match = parse_tag_condition(IF_MATCH, request.headers.get(IF_MATCH))
    patients.delete_patient(UnitOfWork(audit=audit), patient_id, if_match)
    return json_response({"message": "Patient deleted successfully"})
