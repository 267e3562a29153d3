from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response


def delete_patient(request: Request, patient_id: str) -> Response:
    patients.delete_patient(patient_id)
    return json_response({"message": "Patient deleted successfully"})
