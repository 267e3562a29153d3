from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_change_json, read_json_object, request_id_of


def create_patient(request: Request) -> Response:
    change = patients.create_patient(read_json_object(request), correlation_id=request_id_of(request))
    return json_response(patient_change_json("Patient created successfully", change), status=201)
