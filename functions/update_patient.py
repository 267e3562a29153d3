from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_change_json, read_json_object, request_id_of


def update_patient(request: Request, patient_id: str) -> Response:
    change = patients.update_patient(
        patient_id, read_json_object(request), correlation_id=request_id_of(request)
    )
    return json_response(patient_change_json("Patient updated successfully", change))
