from chalice.app import Request, Response

from chalicelib.errors import PatientNotFound, PreconditionFailed, ValidationFailed
from chalicelib.http.openapi import IF_MATCH_PARAMETER, PATIENTS_TAG, Reply, operation
from chalicelib.http.routes import json_response
from chalicelib.patients import service as patients
from chalicelib.patients.preconditions import IF_MATCH, parse_tag_condition
from chalicelib.validation import PATIENT_ID


@operation(
    summary="Delete a patient",
    description="With `If-Match`, only while the patient is still the version named there (its `ETag`);"
    " otherwise 412 and nothing changes.",
    tag=PATIENTS_TAG,
    path={"patient_id": PATIENT_ID},
    headers=(IF_MATCH_PARAMETER,),
    replies={200: Reply("Deleted", "PatientDeleted")},
    errors=(PatientNotFound, ValidationFailed, PreconditionFailed),
)
def delete_patient(request: Request, patient_id: str) -> Response:
    patients.delete_patient(patient_id, parse_tag_condition(IF_MATCH, request.headers.get(IF_MATCH)))
    return json_response({"message": "Patient deleted successfully"})
