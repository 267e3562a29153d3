"""Complete chalice's SAM template for a production (PHI) deployment.

Chalice's own settings in ``.chalice/config.json`` give the functions their
timeout, tracing, reserved concurrency, tags, log groups with retention, VPC
placement and roles. ``for_production`` adds what chalice cannot express, as
template parameters an operator fills per account:

* the roles' policy ARNs name this account, region and partition (``deploy.iam_policies``);
* ``SubnetIds`` / ``SecurityGroupIds`` replace the placeholder VPC ids of the
  config wherever a function is placed in the VPC (the authorizer is not);
* ``LogKmsKeyArn`` encrypts every log group and the alarm topic; empty, a key the stack creates
  does (``deploy.protection``);
* the REST API: ``OpenApiVersion`` 2.0 (without it the SAM transform adds a
  second, unconfigured stage named ``Stage``), access logs without bodies or
  query strings into their own log group, stage throttling, X-Ray tracing, tags;
* ``WebAclArn``: a WAF web ACL associated with the stage; empty, one the stack creates, with a
  rate-based rule per client address (``deploy.protection``);
* TLS 1.2+ on the API's own endpoint (an enhanced security policy); an optional code-signing
  configuration (``CodeSigningProfileVersionArn``);
* ``DomainName`` + ``CertificateArn`` (optional): a regional custom domain with TLS 1.2;
* alarms (thresholds as parameters), their SNS topic (``AlarmEmail`` optional) and a dashboard
  (``deploy.monitoring``);
* the Celery worker as an ECS Fargate service scaling on its queue (``deploy.worker_service``);
* ``CreateDataTier`` (optional): RDS PostgreSQL behind RDS Proxy and ElastiCache for Valkey, and
  the database and Redis settings pointed at them (``deploy.data_tier``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from deploy.data_tier import sam_data_tier
from deploy.gateway_responses import sam_template_for_api_gateway
from deploy.iam_policies import for_cloudformation
from deploy.monitoring import sam_monitoring
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
from deploy.protection import SAM_LOG_KMS_KEY, sam_api_tls, sam_protection
from deploy.worker_service import sam_worker_service

SAM_REST_API = "RestAPI"
ACCESS_LOG_GROUP = "ApiAccessLogGroup"
FUNCTION = "AWS::Serverless::Function"
LOG_GROUP = "AWS::Logs::LogGroup"

PARAMETERS: dict[str, dict[str, Any]] = {
    "SubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": SUBNET_IDS_DESCRIPTION,
    },
    "SecurityGroupIds": {
        "Type": "List<AWS::EC2::SecurityGroup::Id>",
        "Description": SECURITY_GROUP_IDS_DESCRIPTION,
    },
    "LogKmsKeyArn": {
        "Type": "String",
        "Default": "",
        "Description": "KMS key ARN for the log groups and the alarm topic (empty: a key the stack creates)",
    },
    "ThrottlingRateLimit": {
        "Type": "Number",
        "Default": DEFAULT_THROTTLING_RATE_LIMIT,
        "MinValue": 1,
        "Description": "Requests per second the stage accepts (steady state)",
    },
    "ThrottlingBurstLimit": {
        "Type": "Number",
        "Default": DEFAULT_THROTTLING_BURST_LIMIT,
        "MinValue": 1,
        "Description": "Requests the stage accepts in a burst",
    },
    "HealthThrottlingRateLimit": {
        "Type": "Number",
        "Default": DEFAULT_HEALTH_THROTTLING_RATE_LIMIT,
        "MinValue": 1,
        "Description": "Requests per second GET /health accepts (anonymous: throttled apart)",
    },
    "HealthThrottlingBurstLimit": {
        "Type": "Number",
        "Default": DEFAULT_HEALTH_THROTTLING_BURST_LIMIT,
        "MinValue": 1,
        "Description": "Requests GET /health accepts in a burst",
    },
    "WebAclArn": {
        "Type": "String",
        "Default": "",
        "Description": "WAFv2 web ACL ARN (REGIONAL) for the stage (empty: a web ACL the stack creates)",
    },
    "DomainName": {
        "Type": "String",
        "Default": "",
        "Description": "Custom domain name of the API (empty: none)",
    },
    "CertificateArn": {
        "Type": "String",
        "Default": "",
        "Description": "ACM certificate ARN, in the stack's region, for DomainName",
    },
}
CONDITIONS = {
    "HasLogKmsKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "LogKmsKeyArn"}, ""]}]},
    "HasWebAcl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebAclArn"}, ""]}]},
    "HasCustomDomain": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
}
LOG_KMS_KEY = SAM_LOG_KMS_KEY


def for_production(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of chalice's SAM template, completed as the module docstring says."""
    template = copy.deepcopy(sam_template_for_api_gateway(template))
    resources: dict[str, Any] = template["Resources"]
    template["Parameters"] = {**template.get("Parameters", {}), **copy.deepcopy(PARAMETERS)}
    template["Conditions"] = {**template.get("Conditions", {}), **copy.deepcopy(CONDITIONS)}
    tags = our_tags(r["Properties"].get("Tags", {}) for r in resources.values() if r["Type"] == FUNCTION)
    retention = _log_retention(resources)

    for resource in resources.values():
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                policy["PolicyDocument"] = for_cloudformation(policy["PolicyDocument"])
        if resource["Type"] == FUNCTION and "VpcConfig" in properties:
            properties["VpcConfig"] = {
                "SubnetIds": {"Ref": "SubnetIds"},
                "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
            }
    _complete_function_log_groups(resources, tags)

    resources[ACCESS_LOG_GROUP] = {
        "Type": LOG_GROUP,
        "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/apigateway/${{{SAM_REST_API}}}/access"},
            "RetentionInDays": retention,
            "KmsKeyId": LOG_KMS_KEY,
            "Tags": _tag_list(tags),
        },
    }
    api = resources[SAM_REST_API]["Properties"]
    api["OpenApiVersion"] = "2.0"
    sam_api_tls(api)
    api["TracingEnabled"] = True
    api["Tags"] = dict(tags)
    api["AccessLogSetting"] = {
        "DestinationArn": {"Fn::GetAtt": [ACCESS_LOG_GROUP, "Arn"]},
        "Format": ACCESS_LOG_FORMAT,
    }
    api["MethodSettings"] = [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
            "MetricsEnabled": True,
            # Execution logs would hold request and response bodies: PHI.
            "DataTraceEnabled": False,
        },
        {
            # API Gateway writes a method's path with each "/" as "~1".
            "ResourcePath": "/" + HEALTH_PATH.replace("/", "~1"),
            "HttpMethod": "GET",
            "ThrottlingRateLimit": {"Ref": "HealthThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "HealthThrottlingBurstLimit"},
            "MetricsEnabled": True,
            "DataTraceEnabled": False,
        },
    ]
    resources.update(_web_acl_association())
    resources.update(_custom_domain())
    sam_monitoring(template, tags)
    sam_protection(template, _tag_list(tags))
    sam_worker_service(template, tags, retention, LOG_KMS_KEY)
    sam_data_tier(template, tags, retention, LOG_KMS_KEY)
    return template


def _log_retention(resources: dict[str, Any]) -> int:
    days = {r["Properties"].get("RetentionInDays") for r in resources.values() if r["Type"] == LOG_GROUP}
    if len(days) != 1 or None in days:
        raise ValueError("set log_retention_in_days for the stage in .chalice/config.json")
    return int(days.pop())


def _complete_function_log_groups(resources: dict[str, Any], tags: dict[str, str]) -> None:
    """Name each function as its role's policy expects (its own log group only), and create that
    log group before the function, so Lambda never creates one without retention.

    chalice 1.34 leaves the function name to CloudFormation (a generated name, which no policy
    can name in advance) and names the log group by another logical id ("ApiHandler" for "APIHandler").
    """
    functions = {name.lower(): name for name, r in resources.items() if r["Type"] == FUNCTION}
    for name, resource in resources.items():
        if resource["Type"] != LOG_GROUP or name == ACCESS_LOG_GROUP:
            continue
        function = resources[functions[name.removesuffix("LogGroup").lower()]]
        function_name = _log_group_function_name(resources, function)
        function["Properties"]["FunctionName"] = function_name
        function["DependsOn"] = sorted({*function.get("DependsOn", []), name})
        properties = resource["Properties"]
        properties["LogGroupName"] = f"/aws/lambda/{function_name}"
        properties["KmsKeyId"] = LOG_KMS_KEY
        properties["Tags"] = _tag_list(tags)


def _log_group_function_name(resources: dict[str, Any], function: dict[str, Any]) -> str:
    """The function name whose log group (``/aws/lambda/<name>``) the function's role may write to."""
    role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
    text = json.dumps(role["Properties"]["Policies"])
    names = set(re.findall(r":log-group:/aws/lambda/([A-Za-z0-9_.-]+):\*", text))
    if len(names) != 1:
        raise ValueError(f"a function's role must allow writing to exactly one log group, found {names}")
    return str(names.pop())


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _stage_arn() -> dict[str, Any]:
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{SAM_REST_API}}}"
        f"/stages/${{{SAM_REST_API}.Stage}}"
    }


def _web_acl_association() -> dict[str, Any]:
    return {
        "ApiWebAclAssociation": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "Condition": "HasWebAcl",
            "Properties": {"ResourceArn": _stage_arn(), "WebACLArn": {"Ref": "WebAclArn"}},
        }
    }


def _custom_domain() -> dict[str, Any]:
    return {
        "ApiDomainName": {
            "Type": "AWS::ApiGateway::DomainName",
            "Condition": "HasCustomDomain",
            "Properties": {
                "DomainName": {"Ref": "DomainName"},
                "RegionalCertificateArn": {"Ref": "CertificateArn"},
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
                "SecurityPolicy": "TLS_1_2",
            },
        },
        "ApiBasePathMapping": {
            "Type": "AWS::ApiGateway::BasePathMapping",
            "Condition": "HasCustomDomain",
            "Properties": {
                "DomainName": {"Ref": "ApiDomainName"},
                "RestApiId": {"Ref": SAM_REST_API},
                "Stage": {"Ref": f"{SAM_REST_API}.Stage"},
            },
        },
    }
