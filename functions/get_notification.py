from chalice.app import Request, Response

from chalicelib.errors import NotificationNotFound
from chalicelib.http.openapi import NOTIFICATIONS_TAG, Reply, operation
from chalicelib.http.routes import json_response, notification_json
from chalicelib.notifications import service as notifications

NOTIFICATION_ID = {"description": "The notification's id (a UUID).", "schema": {"type": "string"}}


@operation(
    summary="One notification's delivery status",
    tag=NOTIFICATIONS_TAG,
    path={"notification_id": NOTIFICATION_ID},
    replies={200: Reply("The notification", "Notification")},
    errors=(NotificationNotFound,),
)
def get_notification(request: Request, notification_id: str) -> Response:
    return json_response(notification_json(notifications.get_notification(notification_id)))
