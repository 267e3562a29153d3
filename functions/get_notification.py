from chalice.app import Request, Response

from chalicelib import notifications
from chalicelib.http import json_response, notification_json


def get_notification(request: Request, notification_id: str) -> Response:
    return json_response(notification_json(notifications.get_notification(notification_id)))
