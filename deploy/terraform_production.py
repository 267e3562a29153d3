"""Complete chalice's Terraform configuration for a production (PHI) deployment.

The counterpart of ``deploy.sam`` (same settings, same behaviour), applied after
``deploy.terraform.modernize``. Chalice's own settings give the functions their
timeout, tracing, reserved concurrency, tags, log groups and VPC placement;
``for_production`` adds input variables an operator sets per account:

* the roles' policy ARNs name this account, region and partition (``deploy.iam_policies``);
* ``subnet_ids`` / ``security_group_ids`` (required) replace the placeholder VPC
  ids of the config wherever a function is placed in the VPC;
* ``log_kms_key_arn`` encrypts every log group and the alarm topic (null: a key created here,
  ``deploy.protection``); the functions' log
  groups get their real names (chalice names them after its resource names) and
  exist before the functions, so Lambda never creates one without retention;
* the scheduled functions' EventBridge rules are named after their functions
  (chalice's names lack the app and stage) and tagged;
* the stage: access logs without bodies or query strings, throttling
  (``throttling_rate_limit``, ``throttling_burst_limit``), X-Ray tracing, tags;
* ``web_acl_arn``: a WAF web ACL associated with the stage (null: one created here, with a
  rate-based rule per client address); TLS 1.2+ on the API's own endpoint, through the API
  definition's OpenAPI extensions (the aws provider 5 has no argument for it); an optional
  code-signing configuration (``code_signing_profile_version_arn``);
* the role policies as ``aws_iam_policy_document`` data sources (which checkov's IAM checks read);
* ``domain_name`` + ``certificate_arn`` (optional): a regional custom domain with TLS 1.2;
* alarms (thresholds as variables), their SNS topic (``alarm_email`` optional) and a dashboard
  (``deploy.monitoring``);
* the Celery worker as an ECS Fargate service scaling on its queue (``deploy.worker_service``);
* ``create_data_tier`` (optional): RDS PostgreSQL behind RDS Proxy and ElastiCache for Valkey, and
  the database and Redis settings pointed at them (``deploy.data_tier``).
"""

from __future__ import annotations

import copy
from typing import Any

from deploy.data_tier import terraform_data_tier
from deploy.iam_policies import for_terraform, terraform_role_policies_as_documents
from deploy.monitoring import terraform_monitoring
from deploy.production import (
    ACCESS_LOG_FORMAT,
    DEFAULT_HEALTH_THROTTLING_BURST_LIMIT,
    DEFAULT_HEALTH_THROTTLING_RATE_LIMIT,
    DEFAULT_THROTTLING_BURST_LIMIT,
    DEFAULT_THROTTLING_RATE_LIMIT,
    HEALTH_PATH,
    SECURITY_GROUP_IDS_DESCRIPTION,
    SUBNET_IDS_DESCRIPTION,
    our_tags,
)
from deploy.protection import TERRAFORM_LOG_KMS_KEY, terraform_protection
from deploy.worker_service import terraform_worker_service

LOG_GROUP_SUFFIX = "-log-group"  # chalice's name for a function's log group resource
EVENT_SUFFIX = "-event"  # chalice's name for a scheduled function's rule, target and permission
STAGE = "aws_api_gateway_stage.rest_api"
REST_API = "aws_api_gateway_rest_api.rest_api"

VARIABLES: dict[str, dict[str, Any]] = {
    "subnet_ids": {
        "type": "list(string)",
        "description": SUBNET_IDS_DESCRIPTION,
    },
    "security_group_ids": {
        "type": "list(string)",
        "description": SECURITY_GROUP_IDS_DESCRIPTION,
    },
    "log_kms_key_arn": {
        "type": "string",
        "default": None,
        "description": "KMS key ARN encrypting the log groups and the alarm topic (null: a key created here)",
    },
    "throttling_rate_limit": {
        "type": "number",
        "default": DEFAULT_THROTTLING_RATE_LIMIT,
        "description": "Requests per second the stage accepts (steady state)",
    },
    "throttling_burst_limit": {
        "type": "number",
        "default": DEFAULT_THROTTLING_BURST_LIMIT,
        "description": "Requests the stage accepts in a burst",
    },
    "health_throttling_rate_limit": {
        "type": "number",
        "default": DEFAULT_HEALTH_THROTTLING_RATE_LIMIT,
        "description": "Requests per second GET /health accepts (anonymous: throttled apart)",
    },
    "health_throttling_burst_limit": {
        "type": "number",
        "default": DEFAULT_HEALTH_THROTTLING_BURST_LIMIT,
        "description": "Requests GET /health accepts in a burst",
    },
    "web_acl_arn": {
        "type": "string",
        "default": None,
        "description": "WAFv2 web ACL ARN (REGIONAL scope) for the stage (null: a web ACL created here)",
    },
    "domain_name": {
        "type": "string",
        "default": None,
        "description": "Custom domain name of the API (null: none)",
    },
    "certificate_arn": {
        "type": "string",
        "default": None,
        "description": "ACM certificate ARN, in the provider's region, for domain_name",
    },
}


def for_production(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of the (modernized) Terraform configuration, completed as the module docstring says."""
    config = copy.deepcopy(config)
    resources: dict[str, Any] = config["resource"]
    config["variable"] = {**config.get("variable", {}), **copy.deepcopy(VARIABLES)}
    functions: dict[str, Any] = resources["aws_lambda_function"]
    tags = our_tags(function.get("tags", {}) for function in functions.values())

    for role_policy in resources.get("aws_iam_role_policy", {}).values():
        role_policy["policy"] = for_terraform(role_policy["policy"])
    log_groups: dict[str, Any] = resources.get("aws_cloudwatch_log_group", {})
    retention = {group.get("retention_in_days") for group in log_groups.values()}
    if not log_groups or len(retention) != 1 or None in retention:
        raise ValueError("set log_retention_in_days for the stage in .chalice/config.json")
    for name, group in log_groups.items():
        function = functions[name.removesuffix(LOG_GROUP_SUFFIX)]
        group.update(
            {
                "name": f"/aws/lambda/{function['function_name']}",
                "kms_key_id": TERRAFORM_LOG_KMS_KEY,
                "tags": dict(tags),
            }
        )
        function["depends_on"] = [f"aws_cloudwatch_log_group.{name}"]
    for function in functions.values():
        if "vpc_config" in function:
            function["vpc_config"] = {
                "subnet_ids": "${var.subnet_ids}",
                "security_group_ids": "${var.security_group_ids}",
            }
    # Chalice names a schedule's rule after the function alone: two stages in one account would clash.
    for name, rule in resources.get("aws_cloudwatch_event_rule", {}).items():
        rule.update({"name": functions[name.removesuffix(EVENT_SUFFIX)]["function_name"], "tags": dict(tags)})

    log_groups["api_access"] = {
        "name": f"/aws/apigateway/${{{REST_API}.id}}/access",
        "retention_in_days": retention.pop(),
        "kms_key_id": TERRAFORM_LOG_KMS_KEY,
        "tags": dict(tags),
    }
    resources["aws_cloudwatch_log_group"] = log_groups
    resources["aws_api_gateway_rest_api"]["rest_api"]["tags"] = dict(tags)
    # A replaced API exists before the old one goes, so the stage never points at nothing.
    resources["aws_api_gateway_rest_api"]["rest_api"]["lifecycle"] = {"create_before_destroy": True}
    resources["aws_api_gateway_stage"]["rest_api"].update(
        {
            "xray_tracing_enabled": True,
            "access_log_settings": {
                "destination_arn": "${aws_cloudwatch_log_group.api_access.arn}",
                "format": ACCESS_LOG_FORMAT,
            },
            "tags": dict(tags),
        }
    )
    resources["aws_api_gateway_method_settings"] = {
        "rest_api": {
            "rest_api_id": f"${{{REST_API}.id}}",
            "stage_name": f"${{{STAGE}.stage_name}}",
            "method_path": "*/*",
            "settings": {
                "throttling_rate_limit": "${var.throttling_rate_limit}",
                "throttling_burst_limit": "${var.throttling_burst_limit}",
                "metrics_enabled": True,
                # Execution logs would hold request and response bodies: PHI.
                "data_trace_enabled": False,
            },
        },
        "health": {
            "rest_api_id": f"${{{REST_API}.id}}",
            "stage_name": f"${{{STAGE}.stage_name}}",
            "method_path": f"{HEALTH_PATH.removeprefix('/')}/GET",
            "settings": {
                "throttling_rate_limit": "${var.health_throttling_rate_limit}",
                "throttling_burst_limit": "${var.health_throttling_burst_limit}",
                "metrics_enabled": True,
                "data_trace_enabled": False,
            },
        },
    }
    resources["aws_wafv2_web_acl_association"] = {
        "rest_api": {
            "count": "${var.web_acl_arn == null ? 0 : 1}",
            "resource_arn": f"${{{STAGE}.arn}}",
            "web_acl_arn": "${var.web_acl_arn}",
        }
    }
    resources["aws_api_gateway_domain_name"] = {
        "rest_api": {
            "count": "${var.domain_name == null ? 0 : 1}",
            "domain_name": "${var.domain_name}",
            "regional_certificate_arn": "${var.certificate_arn}",
            "endpoint_configuration": {"types": ["REGIONAL"]},
            "security_policy": "TLS_1_2",
            "tags": dict(tags),
        }
    }
    resources["aws_api_gateway_base_path_mapping"] = {
        "rest_api": {
            "count": "${var.domain_name == null ? 0 : 1}",
            "api_id": f"${{{REST_API}.id}}",
            "stage_name": f"${{{STAGE}.stage_name}}",
            "domain_name": "${aws_api_gateway_domain_name.rest_api[0].domain_name}",
        }
    }
    terraform_monitoring(config, tags)
    terraform_protection(config, tags)
    retention_days = log_groups["api_access"]["retention_in_days"]
    terraform_worker_service(config, tags, retention_days, TERRAFORM_LOG_KMS_KEY)
    terraform_data_tier(config, tags, retention_days, TERRAFORM_LOG_KMS_KEY)
    terraform_role_policies_as_documents(config)
    return config
