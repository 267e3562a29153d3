"""What the SAM template (``deploy.sam``) and the Terraform configuration (``deploy.terraform``)
add alike for production, so both deployments behave the same."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

# What an access log line holds: who and what, never a body, a header value or the query string
# ($context.path is the path without its query string; $context.resourcePath the route template).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integration.latency",
    "principal": "$context.authorizer.principalId",
    "error": "$context.error.responseType",
    "wafStatus": "$context.waf.status",
}
ACCESS_LOG_FORMAT = json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))

# The VPC placement of the functions that reach the database and Redis: SAM parameters and Terraform
# variables, described alike.
SUBNET_IDS_DESCRIPTION = (
    "Private subnets of the API and scheduled functions, with a route to the database and Redis"
)
SECURITY_GROUP_IDS_DESCRIPTION = (
    "Security groups of the API and scheduled functions, allowed into the database and Redis"
)

DEFAULT_THROTTLING_RATE_LIMIT = 100
DEFAULT_THROTTLING_BURST_LIMIT = 200
# The anonymous GET /health, throttled apart so that callers without a token cannot spend the API's
# reserved concurrency (each process answers it from a check at most 5 s old).
HEALTH_PATH = "/health"
DEFAULT_HEALTH_THROTTLING_RATE_LIMIT = 5
DEFAULT_HEALTH_THROTTLING_BURST_LIMIT = 10

# Chalice's tag on every function; not ours to copy elsewhere.
CHALICE_TAG = "aws-chalice"


def our_tags(function_tags: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The tags the stage gives its functions (chalice's ``tags``), for the other resources too."""
    tag_sets = [{k: v for k, v in tags.items() if k != CHALICE_TAG} for tags in function_tags]
    if not tag_sets or any(tags != tag_sets[0] for tags in tag_sets):
        raise ValueError("every function must carry the same tags (the stage's tags in .chalice/config.json)")
    if "data-classification" not in tag_sets[0]:
        raise ValueError("the stage's tags in .chalice/config.json must include data-classification")
    return tag_sets[0]
