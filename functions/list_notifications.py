from chalice.app import Request, Response

from chalicelib.audit.recording import LIST_NOTIFICATIONS, AuditContext
from chalicelib.errors import ValidationFailed
from chalicelib.http.endpoints import NOTIFICATIONS_TAG, Reply, endpoint
from chalicelib.http.requests import next_page_link
from chalicelib.http.responses import json_response
from chalicelib.notifications import service as notifications
from chalicelib.notifications.shapes import notification_page_json
from chalicelib.paging import next_page_number
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction


@endpoint(
    "GET",
    "/notifications",
    scope=PATIENTS_READ,
    audit=LIST_NOTIFICATIONS,
    summary="Notifications in one status, oldest first",
    description="By default the dead letters: notifications that failed after their last retry."
    " Follow `next` for the following page.",
    tag=NOTIFICATIONS_TAG,
    query=notifications.status_list_parameters,
    replies={200: Reply("One page of notifications", "NotificationList")},
    errors=(ValidationFailed,),
)
def list_notifications(request: Request, *, audit: AuditContext) -> Response:
    query = request.query_params or {}
    page = notifications.list_notifications_with_status(
        ReadTransaction(audit=audit), query.get("status"), query.get("page"), query.get("per_page")
    )
    next_page = next_page_link(
        request,
        "/notifications",
        ("page", next_page_number(page.page, page.pages)),
        page.per_page,
        kept={"status": query["status"]} if "status" in query else None,
    )
    return json_response({**notification_page_json(page), "next": next_page})
