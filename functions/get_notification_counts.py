from chalice.app import Request, Response

from chalicelib.health.service import count_notifications
from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.responses import json_response
from chalicelib.scopes import AUDIT_READ
from chalicelib.service_layer.unit_of_work import ReadTransaction


@endpoint(
    "GET",
    "/health/notifications",
    scope=AUDIT_READ,
    summary="How many notifications wait for a hand-off, and how many gave up",
    description="For operators: `pending` notifications wait for the relay (Redis was unreachable"
    " when they were written), `failed` ones are dead letters (`GET /notifications`). Counts only, no"
    " patient data; read afresh on each call, so it needs a token with `audit:read`.",
    tag=DOCUMENTATION_TAG,
    replies={200: Reply("The counts", "NotificationCounts")},
)
def get_notification_counts(request: Request) -> Response:
    counts = count_notifications(ReadTransaction())
    return json_response({"pending": counts.pending, "failed": counts.failed})
