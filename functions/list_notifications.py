from chalice.app import Request, Response

from chalicelib.errors import ValidationFailed
from chalicelib.http.openapi import NOTIFICATIONS_TAG, Reply, operation
from chalicelib.http.routes import json_response, notification_page_json
from chalicelib.notifications import service as notifications


@operation(
    summary="Notifications in one status, oldest first",
    description="By default the dead letters: notifications that failed after their last retry.",
    tag=NOTIFICATIONS_TAG,
    query=notifications.status_list_parameters,
    replies={200: Reply("One page of notifications", "NotificationList")},
    errors=(ValidationFailed,),
)
def list_notifications(request: Request) -> Response:
    query = request.query_params or {}
    page = notifications.list_notifications_with_status(
        query.get("status"), query.get("page"), query.get("per_page")
    )
    return json_response(notification_page_json(page))
