from urllib.parse import urlencode

from chalice.app import Request, Response

from chalicelib.errors import ValidationFailed
from chalicelib.http.openapi import PATIENTS_TAG, Reply, operation
from chalicelib.http.routes import json_response, patient_json
from chalicelib.patients import service as patients


@operation(
    summary="List patients in id order",
    description="Page by number (`page`) or, for long lists, by cursor: follow `next`, which carries"
    " `after`. The cursor costs the same at any depth; a page number costs more the deeper it is.",
    tag=PATIENTS_TAG,
    query=patients.list_parameters,
    replies={200: Reply("One page of patients", "PatientList")},
    errors=(ValidationFailed,),
)
def list_patients(request: Request) -> Response:
    query = request.query_params or {}
    page = patients.list_patients(query.get("page"), query.get("per_page"), query.get("after"))
    return json_response(
        {
            "total": page.total,
            "pages": page.pages,
            "current_page": page.page,
            "per_page": page.per_page,
            "patients": [patient_json(p) for p in page.patients],
            "next": next_link(request, page),
        }
    )


def next_link(request: Request, page: patients.PatientPage) -> str | None:
    if page.next_after is None:
        return None
    # The path as the client called it, so API Gateway's stage prefix (/api) stays in the link.
    path = (request.context or {}).get("path") or "/patients"
    return f"{path}?{urlencode({'after': page.next_after, 'per_page': page.per_page})}"
