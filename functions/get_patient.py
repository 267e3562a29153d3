from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.errors import PatientNotFound
from chalicelib.http import json_response, patient_json
from chalicelib.openapi import PATIENTS_TAG, Reply, operation
from chalicelib.validation import PATIENT_ID


@operation(
    summary="Get a patient",
    tag=PATIENTS_TAG,
    path={"patient_id": PATIENT_ID},
    replies={200: Reply("The patient", "Patient")},
    errors=(PatientNotFound,),
)
def get_patient(request: Request, patient_id: str) -> Response:
    return json_response(patient_json(patients.get_patient(patient_id)))
