from chalice.app import Request, Response

from chalicelib import patients
from chalicelib.http import json_response, patient_json


def list_patients(request: Request) -> Response:
    query = request.query_params or {}
    page = patients.list_patients(query.get("page"), query.get("per_page"))
    return json_response(
        {
            "total": page.total,
            "pages": page.pages,
            "current_page": page.page,
            "per_page": page.per_page,
            "patients": [patient_json(p) for p in page.patients],
        }
    )
