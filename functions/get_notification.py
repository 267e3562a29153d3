from chalice.app import Request, Response

from chalicelib.audit.recording import READ_NOTIFICATION, AuditContext
from chalicelib.errors import NotificationNotFound
from chalicelib.http.endpoints import NOTIFICATIONS_TAG, Reply, endpoint
from chalicelib.http.responses import json_response
from chalicelib.notifications import service as notifications
from chalicelib.notifications.shapes import notification_json
from chalicelib.scopes import PATIENTS_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction

NOTIFICATION_ID = {"description": "The notification's id (a UUID).", "schema": {"type": "string"}}


@endpoint(
    "GET",
    "/notifications/{notification_id}",
    scope=PATIENTS_READ,
    audit=READ_NOTIFICATION,
    summary="One notification's delivery status",
    tag=NOTIFICATIONS_TAG,
    path_parameters={"notification_id": NOTIFICATION_ID},
    replies={200: Reply("The notification", "Notification")},
    errors=(NotificationNotFound,),
)
def get_notification(request: Request, notification_id: str, *, audit: AuditContext) -> Response:
    return json_response(
        notification_json(notifications.get_notification(ReadTransaction(audit=audit), notification_id))
    )
