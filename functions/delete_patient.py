from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.errors import PatientNotFound
from chalicelib.http import json_response
from chalicelib.openapi import PATIENTS_TAG, Reply, operation
from chalicelib.validation import PATIENT_ID


@operation(
    summary="Delete a patient",
    tag=PATIENTS_TAG,
    path={"patient_id": PATIENT_ID},
    replies={200: Reply("Deleted", "PatientDeleted")},
    errors=(PatientNotFound,),
)
def delete_patient(request: Request, patient_id: str) -> Response:
    patients.delete_patient(patient_id)
    return json_response({"message": "Patient deleted successfully"})
