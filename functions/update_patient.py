from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_json, read_json_object


def update_patient(request: Request, patient_id: str) -> Response:
    patient = patients.update_patient(patient_id, read_json_object(request))
    return json_response({"message": "Patient updated successfully", "patient": patient_json(patient)})
