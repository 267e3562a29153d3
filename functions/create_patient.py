from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.errors import DuplicateEmail, ValidationFailed
from chalicelib.http import json_response, patient_json, read_json_object
from chalicelib.openapi import PATIENTS_TAG, Reply, operation


@operation(
    summary="Create a patient",
    tag=PATIENTS_TAG,
    request_body="PatientCreate",
    replies={201: Reply("The patient as stored", "PatientCreated")},
    errors=(ValidationFailed, DuplicateEmail),
)
def create_patient(request: Request) -> Response:
    patient = patients.create_patient(read_json_object(request))
    return json_response(
        {"message": "Patient created successfully", "patient": patient_json(patient)}, status=201
    )
