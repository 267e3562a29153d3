from chalice.app import Request, Response

from chalicelib import notifications
from chalicelib.http import json_response, notification_page_json


def list_notifications(request: Request) -> Response:
    query = request.query_params or {}
    page = notifications.list_notifications_with_status(
        query.get("status"), query.get("page"), query.get("per_page")
    )
    return json_response(notification_page_json(page))
