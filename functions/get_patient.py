from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_json


def get_patient(request: Request, patient_id: str) -> Response:
    return json_response(patient_json(patients.get_patient(patient_id)))
