from chalice.app import Request, Response

from chalicelib import notifications
from chalicelib.http import json_response, notification_page_json


def list_patient_notifications(request: Request, patient_id: str) -> Response:
    query = request.query_params or {}
    page = notifications.list_patient_notifications(patient_id, query.get("page"), query.get("per_page"))
    return json_response(notification_page_json(page))
