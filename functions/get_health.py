from chalice.app import Request, Response

from chalicelib import bootstrap
from chalicelib.health.service import check_health
from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.responses import json_response


@endpoint(
    "GET",
    "/health",
    summary="Whether the API can reach its database and Redis",
    description="200 while the database answers with the newest schema (Redis down only delays"
    " notifications), else 503. No token, no patient data. Each API process checks at most once every"
    " 5 seconds and answers from that check in between; the notification counts are at"
    " `GET /health/notifications`, behind a token.",
    tag=DOCUMENTATION_TAG,
    replies={
        200: Reply("Healthy", "Health"),
        503: Reply("The database is unreachable or its schema not migrated", "Health"),
    },
)
def get_health(request: Request) -> Response:
    health = check_health(bootstrap.settings().redis_url)
    body = {
        "status": "ok" if health.healthy else "unavailable",
        "database": health.database,
        "redis": health.redis,
    }
    return json_response(body, status=200 if health.healthy else 503)
