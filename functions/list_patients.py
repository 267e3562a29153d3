from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import LIST_PATIENTS, AuditContext
from chalicelib.errors import ValidationFailed
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.requests import next_page_link
from chalicelib.http.responses import json_response
from chalicelib.patients import service as patients
from chalicelib.patients.shapes import patient_page_json
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction


@endpoint(
    "GET",
    "/patients",
    scope=PATIENTS_READ,
    audit=LIST_PATIENTS,
    summary="List patients in id order",
    description="Page by number (`page`) or, for long lists, by cursor: follow `next`, which carries"
    " `after`. The cursor costs the same at any depth; a page number costs more the deeper it is.",
    tag=PATIENTS_TAG,
    query=patients.list_parameters,
    replies={200: Reply("One page of patients", "PatientList")},
    errors=(ValidationFailed,),
)
def list_patients(request: Request, *, audit: AuditContext) -> Response:
    query = request.query_params or {}
    page = patients.list_patients(
        ReadTransaction(audit=audit),
        query.get("page"),
        query.get("per_page"),
        query.get("after"),
        durable_audit=bootstrap.settings().durable_read_audit,
    )
    next_page = next_page_link(request, "/patients", ("after", page.next_after), page.per_page)
    return json_response({**patient_page_json(page), "next": next_page})
