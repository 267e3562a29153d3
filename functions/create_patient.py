from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_json, read_json_object


def create_patient(request: Request) -> Response:
    patient = patients.create_patient(read_json_object(request))
    return json_response(
        {"message": "Patient created successfully", "patient": patient_json(patient)}, status=201
    )
