"""What a PHI deployment gets by default in both templates (after ``deploy.monitoring``):

* a KMS key, created unless ``LogKmsKeyArn`` / ``log_kms_key_arn`` names one, encrypting every log
  group and the alarm topic (``LOG_KEY_POLICY``: CloudWatch Logs of this account and region, and
  CloudWatch alarms publishing to the topic);
* a WAF web ACL on the stage, created unless ``WebAclArn`` / ``web_acl_arn`` names one: a rate-based
  rule per client address and AWS's common and known-bad-inputs rule groups;
* TLS 1.2+ on the API's own endpoint (``deploy.production.API_SECURITY_POLICY``);
* an optional code-signing configuration (``CodeSigningProfileVersionArn`` /
  ``code_signing_profile_version_arn``): when given, every function refuses code not signed by
  that AWS Signer profile.
"""

from __future__ import annotations

import json
from typing import Any

from deploy.iam_policies import for_terraform
from deploy.monitoring import SAM_TOPIC
from deploy.production import (
    API_ENDPOINT_ACCESS_MODE,
    API_SECURITY_POLICY,
    DEFAULT_WAF_RATE_LIMIT,
    ENDPOINT_ACCESS_MODE_EXTENSION,
    LOG_KEY_POLICY,
    SECURITY_POLICY_EXTENSION,
    WAF_MANAGED_RULE_GROUPS,
)

SAM_LOG_KEY = "LogKmsKey"
SAM_WEB_ACL = "ApiWebAcl"
SAM_CODE_SIGNING = "CodeSigningConfig"
# The key every log group and the alarm topic use: the one given, or the one the stack creates.
SAM_LOG_KMS_KEY = {"Fn::If": ["HasLogKmsKey", {"Ref": "LogKmsKeyArn"}, {"Fn::GetAtt": [SAM_LOG_KEY, "Arn"]}]}
TERRAFORM_LOG_KMS_KEY = "${local.log_kms_key_arn}"
TERRAFORM_WEB_ACL = "${local.web_acl_arn}"
TOPIC_SUFFIX = "-alarms"  # the alarm topic is named <API function's name>-alarms (deploy.monitoring)

SAM_PARAMETERS: dict[str, dict[str, Any]] = {
    "WafRateLimit": {
        "Type": "Number",
        "Default": DEFAULT_WAF_RATE_LIMIT,
        "MinValue": 10,
        "Description": "Requests per 5 minutes from one client address before the created web ACL blocks it",
    },
    "CodeSigningProfileVersionArn": {
        "Type": "String",
        "Default": "",
        "Description": "AWS Signer profile version ARN: functions refuse code it did not sign (empty: none)",
    },
}
SAM_CONDITIONS = {
    "CreateLogKmsKey": {"Fn::Equals": [{"Ref": "LogKmsKeyArn"}, ""]},
    "CreateWebAcl": {"Fn::Equals": [{"Ref": "WebAclArn"}, ""]},
    "HasCodeSigning": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CodeSigningProfileVersionArn"}, ""]}]},
}


def _visibility(metric: str) -> dict[str, Any]:
    # No sampled requests: WAF would keep whole requests (paths, headers) of a PHI API for its console.
    return {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def _waf_rules(rate_limit: Any, prefix: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "Name": "RateLimitPerClientAddress",
            "Priority": 0,
            "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": rate_limit, "AggregateKeyType": "IP"}},
            "VisibilityConfig": _visibility(f"{prefix}-rate-limit"),
        }
    ]
    for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS, start=1):
        rules.append(
            {
                "Name": group,
                "Priority": priority,
                "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
                "VisibilityConfig": _visibility(f"{prefix}-{group}"),
            }
        )
    return rules


def sam_protection(template: dict[str, Any], tag_list: list[dict[str, str]]) -> None:
    """Add the key, the web ACL and the code-signing configuration to ``template`` (after monitoring)."""
    resources = template["Resources"]
    prefix = resources[SAM_TOPIC]["Properties"]["TopicName"].removesuffix(TOPIC_SUFFIX)
    template["Parameters"].update(json.loads(json.dumps(SAM_PARAMETERS)))
    template["Conditions"].update(json.loads(json.dumps(SAM_CONDITIONS)))
    resources[SAM_LOG_KEY] = {
        "Type": "AWS::KMS::Key",
        "Condition": "CreateLogKmsKey",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": f"{prefix}: log groups and alarm topic",
            "EnableKeyRotation": True,
            "KeyPolicy": _sam_subs(LOG_KEY_POLICY),
            "Tags": tag_list,
        },
    }
    resources[SAM_TOPIC]["Properties"]["KmsMasterKeyId"] = SAM_LOG_KMS_KEY
    resources[SAM_WEB_ACL] = {
        "Type": "AWS::WAFv2::WebACL",
        "Condition": "CreateWebAcl",
        "Properties": {
            "Name": f"{prefix}-api",
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "Rules": _waf_rules({"Ref": "WafRateLimit"}, prefix),
            "VisibilityConfig": _visibility(f"{prefix}-api"),
            "Tags": tag_list,
        },
    }
    association = resources["ApiWebAclAssociation"]
    association.pop("Condition", None)
    association["Properties"]["WebACLArn"] = {
        "Fn::If": ["HasWebAcl", {"Ref": "WebAclArn"}, {"Fn::GetAtt": [SAM_WEB_ACL, "Arn"]}]
    }
    resources[SAM_CODE_SIGNING] = {
        "Type": "AWS::Lambda::CodeSigningConfig",
        "Condition": "HasCodeSigning",
        "Properties": {
            "Description": f"{prefix}: only code signed by the given profile",
            "AllowedPublishers": {"SigningProfileVersionArns": [{"Ref": "CodeSigningProfileVersionArn"}]},
            "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"},
        },
    }
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeSigningConfigArn"] = {
                "Fn::If": ["HasCodeSigning", {"Ref": SAM_CODE_SIGNING}, {"Ref": "AWS::NoValue"}]
            }


def _sam_subs(value: Any) -> Any:
    """``value`` with every string holding a ``${AWS::...}`` placeholder made an ``Fn::Sub``."""
    if isinstance(value, dict):
        return {key: _sam_subs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sam_subs(item) for item in value]
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    return value


def sam_api_tls(api_properties: dict[str, Any]) -> None:
    """TLS 1.2+ on the API's own endpoint (SAM passes both to AWS::ApiGateway::RestApi)."""
    api_properties["SecurityPolicy"] = API_SECURITY_POLICY
    api_properties["EndpointAccessMode"] = API_ENDPOINT_ACCESS_MODE


TERRAFORM_VARIABLES: dict[str, dict[str, Any]] = {
    "waf_rate_limit": {
        "type": "number",
        "default": DEFAULT_WAF_RATE_LIMIT,
        "description": SAM_PARAMETERS["WafRateLimit"]["Description"],
    },
    "code_signing_profile_version_arn": {
        "type": "string",
        "default": None,
        "description": "AWS Signer profile version ARN: functions refuse code it did not sign (null: none)",
    },
}


def _terraform_rule(rule: dict[str, Any]) -> dict[str, Any]:
    visibility = rule["VisibilityConfig"]
    block: dict[str, Any] = {
        "name": rule["Name"],
        "priority": rule["Priority"],
        "visibility_config": _terraform_visibility(visibility),
    }
    statement = rule["Statement"]
    if "RateBasedStatement" in statement:
        block["action"] = {"block": {}}
        rate = statement["RateBasedStatement"]
        block["statement"] = {
            "rate_based_statement": {"limit": rate["Limit"], "aggregate_key_type": rate["AggregateKeyType"]}
        }
    else:
        group = statement["ManagedRuleGroupStatement"]
        block["override_action"] = {"none": {}}
        block["statement"] = {
            "managed_rule_group_statement": {"name": group["Name"], "vendor_name": group["VendorName"]}
        }
    return block


def _terraform_visibility(visibility: dict[str, Any]) -> dict[str, Any]:
    return {
        "sampled_requests_enabled": visibility["SampledRequestsEnabled"],
        "cloudwatch_metrics_enabled": visibility["CloudWatchMetricsEnabled"],
        "metric_name": visibility["MetricName"],
    }


def terraform_protection(config: dict[str, Any], tags: dict[str, str]) -> None:
    """The same as ``sam_protection``, and TLS 1.2+ in the API definition, for Terraform."""
    resources = config["resource"]
    prefix = resources["aws_sns_topic"]["alarms"]["name"].removesuffix(TOPIC_SUFFIX)
    config["variable"].update(json.loads(json.dumps(TERRAFORM_VARIABLES)))
    config.setdefault("locals", {}).update(
        {
            # one() of an absent resource is null, and coalesce() skips it.
            "log_kms_key_arn": "${coalesce(var.log_kms_key_arn, one(aws_kms_key.logs[*].arn))}",
            "web_acl_arn": "${coalesce(var.web_acl_arn, one(aws_wafv2_web_acl.rest_api[*].arn))}",
        }
    )
    resources["aws_kms_key"] = {
        "logs": {
            "count": "${var.log_kms_key_arn == null ? 1 : 0}",
            "description": f"{prefix}: log groups and alarm topic",
            "enable_key_rotation": True,
            "deletion_window_in_days": 30,
            "policy": for_terraform(json.dumps(LOG_KEY_POLICY)),
            "tags": dict(tags),
        }
    }
    resources["aws_sns_topic"]["alarms"]["kms_master_key_id"] = TERRAFORM_LOG_KMS_KEY
    rules = _waf_rules("${var.waf_rate_limit}", prefix)
    resources["aws_wafv2_web_acl"] = {
        "rest_api": {
            "count": "${var.web_acl_arn == null ? 1 : 0}",
            "name": f"{prefix}-api",
            "scope": "REGIONAL",
            "default_action": {"allow": {}},
            "rule": [_terraform_rule(rule) for rule in rules],
            "visibility_config": _terraform_visibility(_visibility(f"{prefix}-api")),
            "tags": dict(tags),
        }
    }
    association = resources["aws_wafv2_web_acl_association"]["rest_api"]
    association.pop("count", None)
    association["web_acl_arn"] = TERRAFORM_WEB_ACL
    resources["aws_lambda_code_signing_config"] = {
        "functions": {
            "count": "${var.code_signing_profile_version_arn == null ? 0 : 1}",
            "description": f"{prefix}: only code signed by the given profile",
            "allowed_publishers": {
                "signing_profile_version_arns": ["${var.code_signing_profile_version_arn}"]
            },
            "policies": {"untrusted_artifact_on_deployment": "Enforce"},
        }
    }
    for function in resources["aws_lambda_function"].values():
        function["code_signing_config_arn"] = "${one(aws_lambda_code_signing_config.functions[*].arn)}"
    swagger = json.loads(config["locals"]["chalice_api_swagger"])
    swagger[SECURITY_POLICY_EXTENSION] = API_SECURITY_POLICY
    swagger[ENDPOINT_ACCESS_MODE_EXTENSION] = API_ENDPOINT_ACCESS_MODE
    config["locals"]["chalice_api_swagger"] = json.dumps(swagger)
