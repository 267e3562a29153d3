from chalice.app import Request, Response

from chalicelib.audit.recording import LIST_PATIENT_NOTIFICATIONS, AuditContext
from chalicelib.errors import PatientNotFound, ValidationFailed
from chalicelib.http.endpoints import NOTIFICATIONS_TAG, Reply, endpoint
from chalicelib.http.requests import next_page_link
from chalicelib.http.responses import json_response
from chalicelib.notifications import service as notifications
from chalicelib.notifications.shapes import notification_page_json
from chalicelib.paging import next_page_number, paging_parameters
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction
from chalicelib.validation import PATIENT_ID


@endpoint(
    "GET",
    "/patients/{patient_id}/notifications",
    scope=PATIENTS_READ,
    audit=LIST_PATIENT_NOTIFICATIONS,
    summary="The notifications of one patient's changes, oldest first",
    description="404 once the patient is deleted, like every route under the patient. Its"
    " notifications are kept (`cancelled` if they had not been sent): read them by id"
    " (`GET /notifications/{notification_id}`, the id each change answered with) or by status"
    " (`GET /notifications`).",
    tag=NOTIFICATIONS_TAG,
    path_parameters={"patient_id": PATIENT_ID},
    query=paging_parameters,
    replies={200: Reply("One page of notifications", "NotificationList")},
    errors=(PatientNotFound, ValidationFailed),
)
def list_patient_notifications(request: Request, patient_id: str, *, audit: AuditContext) -> Response:
    query = request.query_params or {}
    page = notifications.list_patient_notifications(
        ReadTransaction(audit=audit), patient_id, query.get("page"), query.get("per_page")
    )
    next_page = next_page_link(
        request,
        f"/patients/{patient_id}/notifications",
        ("page", next_page_number(page.page, page.pages)),
        page.per_page,
    )
    return json_response({**notification_page_json(page), "next": next_page})
