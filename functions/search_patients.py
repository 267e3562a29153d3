from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.audit.recording import SEARCH_PATIENTS, AuditContext
from chalicelib.errors import UnacceptableValue, ValidationFailed
from chalicelib.http.endpoints import PATIENTS_TAG, Reply, endpoint
from chalicelib.http.requests import read_json_object
from chalicelib.http.responses import json_response
from chalicelib.patients.shapes import search_page_json
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction


@endpoint(
    "POST",
    "/patients/search",
    scope=PATIENTS_READ,
    audit=SEARCH_PATIENTS,
    summary="Search patients by name, email, phone or change time",
    description="The criteria travel in the body, never in a URL, so no patient data lands in access"
    " logs. All criteria given must hold. Pages come in id order: send the answer's `next` as `after`,"
    " with the same criteria, for the following page. No `total` is computed.",
    tag=PATIENTS_TAG,
    request_body="PatientSearch",
    replies={200: Reply("One page of the matching patients", "PatientSearchResults")},
    errors=(ValidationFailed, UnacceptableValue),
)
def search_patients(request: Request, *, audit: AuditContext) -> Response:
    # Imported here: a cold start that answers a read pays nothing for the search's parsing.
    from chalicelib.patients import search

    payload = read_json_object(request)
    settings = bootstrap.settings()
    page = search.search_patients(
        ReadTransaction(audit=audit),
        payload,
        phone_region=settings.phone_default_region,
        durable_audit=settings.durable_read_audit,
    )
    return json_response(search_page_json(page))
