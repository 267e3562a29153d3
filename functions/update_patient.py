from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.errors import DuplicateEmail, PatientNotFound, ValidationFailed
from chalicelib.http import json_response, patient_json, read_json_object
from chalicelib.openapi import PATIENTS_TAG, Reply, operation
from chalicelib.validation import PATIENT_ID


@operation(
    summary="Change some of a patient's fields",
    tag=PATIENTS_TAG,
    path={"patient_id": PATIENT_ID},
    request_body="PatientUpdate",
    replies={200: Reply("The patient as now stored", "PatientUpdated")},
    errors=(PatientNotFound, ValidationFailed, DuplicateEmail),
)
def update_patient(request: Request, patient_id: str) -> Response:
    patient = patients.update_patient(patient_id, read_json_object(request))
    return json_response({"message": "Patient updated successfully", "patient": patient_json(patient)})
