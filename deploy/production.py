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


# TLS 1.2 or 1.3 on the API's own execute-api endpoint (an enhanced security policy; the legacy default
# there is TLS_1_0), STRICT: a request must reach the API through the endpoint type and host name it was
# sent to (SNI). A custom domain keeps the legacy TLS_1_2 policy (TLS 1.2+): the Terraform aws provider 5
# cannot set a domain's endpoint access mode, which an enhanced policy needs.
API_SECURITY_POLICY = "SecurityPolicy_TLS13_1_2_2021_06"
API_ENDPOINT_ACCESS_MODE = "STRICT"
CUSTOM_DOMAIN_SECURITY_POLICY = "TLS_1_2"
# OpenAPI extensions carrying the same two settings in the API definition (Terraform's aws provider 5
# has no argument for them on aws_api_gateway_rest_api; API Gateway reads them on import).
SECURITY_POLICY_EXTENSION = "x-amazon-apigateway-security-policy"
ENDPOINT_ACCESS_MODE_EXTENSION = "x-amazon-apigateway-endpoint-access-mode"

# WAF: requests one client address may send in WAF's 5-minute window before it is blocked. The stage
# throttles everyone together; this keeps one anonymous client from spending the API's concurrency.
DEFAULT_WAF_RATE_LIMIT = 1000
WAF_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")

# The KMS key the stack creates when no LogKmsKeyArn / log_kms_key_arn is given: it encrypts every log
# group (the functions', the access logs', the worker's /ecs/...) and the alarm topic. ARNs in
# CloudFormation's placeholders, filled per deployment path as deploy.iam_policies does.
LOG_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AdministeredByTheAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "LogGroupsOfThisAccountAndRegion",
            "Effect": "Allow",
            "Principal": {"Service": "logs.${AWS::Region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
                    )
                }
            },
        },
        {
            # CloudWatch publishes alarm notifications to the encrypted topic on the stack's behalf.
            "Sid": "AlarmsPublishToTheEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    ],
}
