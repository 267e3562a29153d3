"""What ``make package`` generates: the SAM template (cfn-lint clean) and the Terraform configuration."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.schedules import ScheduleSettings
from chalicelib.http.gateway_responses import (
    GATEWAY_RESPONSES,
    ROUTE_NOT_FOUND_BODY,
    UNAUTHORIZED_BODY,
    fhir_outcome,
)
from chalicelib.http.schedules import rate_every
from deploy.gateway_responses import ANY_METHOD, INTEGRATION, select_operation
from deploy.iam_policies import policy_document_of
from deploy.package import PackageOutput
from deploy.sam_transform import translate_sam
from deploy.terraform import modernize
from tests.helpers.api import app_routes

GATEWAY_RESPONSES_KEY = "x-amazon-apigateway-gateway-responses"


def sam_definition(sam: dict[str, Any]) -> dict[str, Any]:
    rest_api = sam["Resources"]["RestAPI"]
    assert rest_api["Type"] == "AWS::Serverless::Api"
    return dict(rest_api["Properties"]["DefinitionBody"])


def terraform_definition(terraform: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(terraform["locals"]["chalice_api_swagger"]))


@pytest.mark.parametrize("definition_of", [sam_definition, terraform_definition])
def test_refused_requests_are_401_with_our_body_and_a_bearer_challenge_in_the_cloud(
    sam: dict[str, Any], terraform: dict[str, Any], definition_of: Any
) -> None:
    template = sam if definition_of is sam_definition else terraform
    responses = definition_of(template)[GATEWAY_RESPONSES_KEY]

    assert set(responses) == set(GATEWAY_RESPONSES)
    # UNAUTHORIZED: no Authorization header; ACCESS_DENIED: the authorizer denied the token sent.
    for response_type, challenge in (
        ("UNAUTHORIZED", 'Bearer realm="telehealth-api"'),
        ("ACCESS_DENIED", 'Bearer realm="telehealth-api", error="invalid_token"'),
    ):
        response = responses[response_type]
        assert response["statusCode"] == "401"
        assert gateway_body(response) == {**UNAUTHORIZED_BODY, "request_id": "$context.requestId"}
        assert gateway_headers(response) == {
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "WWW-Authenticate": challenge,
        }
    missing_route = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing_route["statusCode"] == "404"
    assert gateway_body(missing_route) == {**ROUTE_NOT_FOUND_BODY, "request_id": "$context.requestId"}
    assert gateway_headers(missing_route) == {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


@pytest.mark.parametrize("definition_of", [sam_definition, terraform_definition])
def test_a_fhir_client_gets_each_gateway_refusal_as_an_operation_outcome(
    sam: dict[str, Any], terraform: dict[str, Any], definition_of: Any
) -> None:
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    template = sam if definition_of is sam_definition else terraform
    responses = definition_of(template)[GATEWAY_RESPONSES_KEY]

    for response_type, response in responses.items():
        # GIVEN the template API Gateway chooses for Accept: application/fhir+json
        text = response["responseTemplates"]["application/fhir+json"]
        # THEN it is the OperationOutcome of our definition, naming the request, and valid FHIR
        expected = fhir_outcome(GATEWAY_RESPONSES[response_type], "$context.requestId")
        assert json.loads(text) == expected, response_type
        outcome = OperationOutcome.model_validate(json.loads(text))
        assert outcome.issue[0].diagnostics.endswith("(request id $context.requestId)")
        # AND the only substitution in it is the request id: anything else would reach the client as is
        assert "$" not in text.replace("$context.requestId", "") and "#" not in text, response_type
    assert (
        responses["THROTTLED"]["responseTemplates"]["application/json"]
        == (responses["DEFAULT_4XX"]["responseTemplates"]["application/json"])
    )


def gateway_body(response: dict[str, Any]) -> Any:
    return json.loads(response["responseTemplates"]["application/json"])


def gateway_headers(response: dict[str, Any]) -> dict[str, str]:
    """Header name -> value of a gateway response, whose values are quoted literals."""
    prefix = "gatewayresponse.header."
    parameters = response["responseParameters"].items()
    assert all(name.startswith(prefix) and re.fullmatch(r"'[^']*'", value) for name, value in parameters)
    return {name.removeprefix(prefix): value[1:-1] for name, value in parameters}


@pytest.mark.parametrize("definition_of", [sam_definition, terraform_definition])
def test_every_path_hands_undeclared_methods_to_the_function_without_authorizer(
    sam: dict[str, Any], terraform: dict[str, Any], definition_of: Any
) -> None:
    template = sam if definition_of is sam_definition else terraform
    definition = definition_of(template)

    assert set(definition["paths"]) == {path for path, _method in app_routes()}
    for path, operations in definition["paths"].items():
        any_method = operations[ANY_METHOD]
        declared = [operation for method, operation in operations.items() if method != ANY_METHOD]
        # The same Lambda proxy integration as the path's own methods, and no authorizer: the
        # function's router answers 405 with Allow, token or not.
        assert all(any_method[INTEGRATION] == operation[INTEGRATION] for operation in declared), path
        assert any_method[INTEGRATION]["type"] == "aws_proxy"
        assert "security" not in any_method, path
        # API Gateway runs an explicit method before ANY, with its authorizer.
        for method, operation in operations.items():
            if method != ANY_METHOD:
                assert select_operation(definition, path, method) == operation
        assert select_operation(definition, path, "PATCH") == any_method


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cloudformation_gets_the_responses_in_the_api_and_redeploys_when_they_change(
    sam: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    without_responses = copy.deepcopy(sam)
    del without_responses["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][GATEWAY_RESPONSES_KEY]

    translated, translated_without = translate_sam(sam), translate_sam(without_responses)

    (rest_api,) = resources_of_type(translated, "AWS::ApiGateway::RestApi").values()
    assert set(rest_api["Properties"]["Body"][GATEWAY_RESPONSES_KEY]) == set(GATEWAY_RESPONSES)
    # SAM names the deployment after a hash of the API body: changing a response deploys the API.
    deployment = set(resources_of_type(translated, "AWS::ApiGateway::Deployment"))
    assert len(deployment) == 1
    assert deployment != set(resources_of_type(translated_without, "AWS::ApiGateway::Deployment"))


def test_every_route_is_there_and_the_protected_ones_behind_the_bearer_authorizer(
    sam: dict[str, Any],
) -> None:
    definition = sam_definition(sam)
    operations = {
        (path, method.upper()): operation
        for path, methods in definition["paths"].items()
        for method, operation in methods.items()
        if method != ANY_METHOD
    }

    routes = app_routes()
    assert set(operations) == set(routes)
    for route, protected in routes.items():
        assert operations[route].get("security") == ([{"bearer_token": []}] if protected else None), route
    authorizer = definition["securityDefinitions"]["bearer_token"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "token"
    assert "${BearerToken.Arn}" in authorizer["authorizerUri"]["Fn::Sub"]


def test_prod_functions_read_secrets_from_aws_and_run_the_packaging_python(sam: dict[str, Any]) -> None:
    functions = {k: r for k, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}

    assert {r["Properties"]["Handler"] for r in functions.values()} == {
        "app.app",
        "app.authorize_bearer_token",
        *SCHEDULED,
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
        variables = properties["Environment"]["Variables"]
        assert variables["APP_STAGE"] == "prod"
        # Only the authorizer checks tokens: the API's function runs after it and reads none.
        assert ("API_TOKENS_SECRET_ID" in variables) == (
            properties["Handler"] == "app.authorize_bearer_token"
        )
        assert not {"DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256", "REDIS_URL"} & set(variables)
        # The authorizer is told where neither the database nor Redis is; the purge, only the database.
        handler = properties["Handler"]
        assert ("DATABASE_URL_PARAMETER" in variables) == (handler != "app.authorize_bearer_token")
        assert ("REDIS_URL_PARAMETER" in variables) == (handler in ("app.app", "app.relay_notifications"))


def test_cfn_lint_passes_on_the_sam_template(lambda_package: PackageOutput) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"

    result = subprocess.run(
        [str(cfn_lint), str(lambda_package.sam_template)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_pins_current_terraform_and_aws_provider(terraform: dict[str, Any]) -> None:
    assert terraform["terraform"] == {
        "required_version": ">= 1.5.0",
        "required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0, < 7"}},
    }
    assert "null_data_source" not in terraform.get("data", {})


def test_terraform_stage_is_its_own_resource_as_aws_provider_6_requires(terraform: dict[str, Any]) -> None:
    resources = terraform["resource"]
    deployment = resources["aws_api_gateway_deployment"]["rest_api"]

    assert "stage_name" not in deployment and "stage_description" not in deployment
    assert deployment["triggers"] == {"redeployment": "${sha1(local.chalice_api_swagger)}"}
    assert deployment["lifecycle"] == {"create_before_destroy": True}
    stage = resources["aws_api_gateway_stage"]["rest_api"]
    assert {name: stage[name] for name in ("stage_name", "rest_api_id", "deployment_id")} == {
        "stage_name": "api",
        "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
        "deployment_id": "${aws_api_gateway_deployment.rest_api.id}",
    }
    assert terraform["output"]["EndpointURL"]["value"] == "${aws_api_gateway_stage.rest_api.invoke_url}"


def test_terraform_references_name_only_what_the_configuration_declares(terraform: dict[str, Any]) -> None:
    text = json.dumps(terraform)
    declared = {f"{kind}.{name}" for kind, blocks in terraform["resource"].items() for name in blocks} | {
        f"data.{kind}.{name}" for kind, blocks in terraform.get("data", {}).items() for name in blocks
    }

    references = set(re.findall(r"\$\{((?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+)\.", text))
    local_names = set(re.findall(r"local\.([a-z0-9_]+)", text))

    assert references and references <= declared, references - declared
    assert local_names <= set(terraform["locals"])
    assert "aws_api_gateway_deployment.rest_api.invoke_url" not in text


def test_terraform_region_name_becomes_region_and_requires_provider_6() -> None:
    # GIVEN chalice's output for an app with an SNS subscription, reduced to what matters here
    generated = {
        "resource": {
            "aws_api_gateway_deployment": {"rest_api": {"stage_name": "api", "rest_api_id": "x"}},
            "aws_sns_topic_subscription": {
                "alerts": {"topic_arn": "arn:aws:sns:${data.aws_region.chalice.name}:1:alerts"}
            },
        },
        "locals": {"chalice_api_swagger": "{}"},
        "output": {"EndpointURL": {"value": "${aws_api_gateway_deployment.rest_api.invoke_url}"}},
    }

    modern = modernize(generated)

    topic = modern["resource"]["aws_sns_topic_subscription"]["alerts"]["topic_arn"]
    assert topic == "arn:aws:sns:${data.aws_region.chalice.region}:1:alerts"
    assert modern["terraform"]["required_providers"]["aws"]["version"] == ">= 6.0, < 7"


# --- A deployment a PHI review can pass: each point on the SAM template after the transform and on Terraform.

API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29


@pytest.fixture(scope="module")
def deployed_sam(sam: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation deploys from the SAM template."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return translate_sam(sam)


def sam_functions(template: dict[str, Any]) -> dict[str, Any]:
    """Logical id -> properties of each Lambda function, by handler."""
    return {
        r["Properties"]["Handler"]: r["Properties"]
        for r in resources_of_type(template, "AWS::Lambda::Function").values()
    }


def terraform_functions(terraform: dict[str, Any]) -> dict[str, Any]:
    return {f["handler"]: f for f in terraform["resource"]["aws_lambda_function"].values()}


def tag_dict(tags: Any) -> dict[str, str]:
    return tags if isinstance(tags, dict) else {tag["Key"]: tag["Value"] for tag in tags}


def test_functions_time_out_before_the_gateway_with_tracing_reserved_concurrency_and_phi_tags(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    sam_side, terraform_side = sam_functions(deployed_sam), terraform_functions(terraform)

    assert set(sam_side) == set(terraform_side) == {"app.app", "app.authorize_bearer_token", *SCHEDULED}
    for handler, function in sam_side.items():
        assert function["Timeout"] < API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS, handler
        assert function["TracingConfig"] == {"Mode": "Active"}, handler
        assert function["ReservedConcurrentExecutions"] >= 1, handler
        assert tag_dict(function["Tags"])["data-classification"] == "phi", handler
    for handler, function in terraform_side.items():
        assert function["timeout"] < API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS, handler
        assert function["tracing_config"] == {"mode": "Active"}, handler
        assert function["reserved_concurrent_executions"] >= 1, handler
        assert function["tags"]["data-classification"] == "phi", handler
        assert function["reserved_concurrent_executions"] == sam_side[handler]["ReservedConcurrentExecutions"]


@pytest.mark.parametrize("definition_of", [sam_definition, terraform_definition])
def test_every_other_gateway_refusal_or_failure_answers_our_json_without_caching(
    sam: dict[str, Any], terraform: dict[str, Any], definition_of: Any
) -> None:
    template = sam if definition_of is sam_definition else terraform
    responses = definition_of(template)[GATEWAY_RESPONSES_KEY]

    for response_type in ("DEFAULT_4XX", "DEFAULT_5XX"):
        response = responses[response_type]
        # No statusCode: API Gateway keeps its own (429 throttled, 403 WAF, 504 timeout...).
        assert "statusCode" not in response, response_type
        body = gateway_body(response)
        assert set(body) == {"code", "message", "request_id"} and body["request_id"] == "$context.requestId"
        assert gateway_headers(response) == {
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }


def test_the_api_has_one_stage_with_access_logs_throttling_and_tracing_in_cloudformation(
    deployed_sam: dict[str, Any],
) -> None:
    (stage,) = resources_of_type(deployed_sam, "AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]

    assert properties["StageName"] == "api"  # and no second stage named "Stage"
    assert properties["TracingEnabled"] is True
    assert tag_dict(properties["Tags"])["data-classification"] == "phi"
    assert_access_log_format_holds_no_body_nor_query(properties["AccessLogSetting"]["Format"])
    assert properties["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    every_method, health = properties["MethodSettings"]
    assert every_method == {
        "ResourcePath": "/*",
        "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "MetricsEnabled": True,
        "DataTraceEnabled": False,
    }
    # The anonymous health check is throttled apart, tighter: no token spends the API's concurrency.
    assert health == {
        "ResourcePath": "/~1health",
        "HttpMethod": "GET",
        "ThrottlingRateLimit": {"Ref": "HealthThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "HealthThrottlingBurstLimit"},
        "MetricsEnabled": True,
        "DataTraceEnabled": False,
    }
    parameters = deployed_sam["Parameters"]
    assert parameters["HealthThrottlingRateLimit"]["Default"] < parameters["ThrottlingRateLimit"]["Default"]


def test_the_terraform_stage_has_access_logs_throttling_and_tracing(terraform: dict[str, Any]) -> None:
    resources = terraform["resource"]
    stage = resources["aws_api_gateway_stage"]["rest_api"]

    assert stage["xray_tracing_enabled"] is True
    assert stage["tags"]["data-classification"] == "phi"
    assert resources["aws_api_gateway_rest_api"]["rest_api"]["tags"]["data-classification"] == "phi"
    assert stage["access_log_settings"]["destination_arn"] == "${aws_cloudwatch_log_group.api_access.arn}"
    assert_access_log_format_holds_no_body_nor_query(stage["access_log_settings"]["format"])
    method_settings, health = resources["aws_api_gateway_method_settings"].values()
    assert (health["method_path"], health["stage_name"]) == ("health/GET", method_settings["stage_name"])
    assert health["settings"]["throttling_rate_limit"] == "${var.health_throttling_rate_limit}"
    assert health["settings"]["throttling_burst_limit"] == "${var.health_throttling_burst_limit}"
    assert method_settings["method_path"] == "*/*"
    assert method_settings["stage_name"] == "${aws_api_gateway_stage.rest_api.stage_name}"
    assert method_settings["settings"] == {
        "throttling_rate_limit": "${var.throttling_rate_limit}",
        "throttling_burst_limit": "${var.throttling_burst_limit}",
        "metrics_enabled": True,
        "data_trace_enabled": False,
    }


def assert_access_log_format_holds_no_body_nor_query(log_format: str) -> None:
    fields = json.loads(log_format)
    variables = set(fields.values())
    assert {"$context.requestId", "$context.status", "$context.resourcePath"} <= variables
    # $context.path and requestOverride/responseOverride carry the concrete path or bodies; no
    # $input (body) nor $method.request.querystring exist in an access log format at all.
    assert not [v for v in variables if not v.startswith("$context.") or v.split(".")[-1] == "path"]
    assert not [v for v in variables if "Override" in v or "querystring" in v.lower()]


def test_every_log_group_exists_with_retention_and_the_given_or_created_kms_key(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    log_groups = resources_of_type(deployed_sam, "AWS::Logs::LogGroup")
    functions = resources_of_type(deployed_sam, "AWS::Lambda::Function")

    names = {
        group["Properties"]["LogGroupName"]: name
        for name, group in log_groups.items()
        if name not in ("ApiAccessLogGroup", "WorkerLogGroup")  # /aws/apigateway/<id>/access, /ecs/...
    }
    # One per function, named as Lambda names it and created before it (so Lambda never creates one
    # without retention); the function names are those of the Terraform output and the policies.
    assert {f["Properties"]["FunctionName"] for f in functions.values()} == {
        f["function_name"] for f in terraform["resource"]["aws_lambda_function"].values()
    }
    for function in functions.values():
        log_group = names[f"/aws/lambda/{function['Properties']['FunctionName']}"]
        assert log_group in function["DependsOn"]
    always = [name for name, group in log_groups.items() if "Condition" not in group]
    assert len(always) == len(functions) + 2  # and the API's access log group, and the worker's
    # and, with the data tier, the database's exported logs
    assert {g["Condition"] for g in log_groups.values() if "Condition" in g} <= {"CreatesDataTier"}
    for group in log_groups.values():
        properties = group["Properties"]
        assert properties["RetentionInDays"] >= 365
        assert properties["KmsKeyId"] == SAM_LOG_KEY
        assert tag_dict(properties["Tags"])["data-classification"] == "phi"
    assert deployed_sam["Parameters"]["LogKmsKeyArn"]["Default"] == ""

    terraform_groups = terraform["resource"]["aws_cloudwatch_log_group"]
    terraform_names = {group["name"] for group in terraform_groups.values()}
    for resource_name, function in terraform["resource"]["aws_lambda_function"].items():
        assert f"/aws/lambda/{function['function_name']}" in terraform_names
        (log_group,) = function["depends_on"]
        assert terraform_groups[log_group.removeprefix("aws_cloudwatch_log_group.")]["name"] == (
            f"/aws/lambda/{function['function_name']}"
        ), resource_name
    for group in terraform_groups.values():
        assert group["retention_in_days"] >= 365
        assert group["kms_key_id"] == "${local.log_kms_key_arn}"
        assert group["tags"]["data-classification"] == "phi"
    assert terraform["variable"]["log_kms_key_arn"]["default"] is None


SAM_LOG_KEY = {"Fn::If": ["HasLogKmsKey", {"Ref": "LogKmsKeyArn"}, {"Fn::GetAtt": ["LogKmsKey", "Arn"]}]}


def test_without_a_given_key_the_stack_creates_one_for_the_logs_and_the_alarm_topic(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    key = deployed_sam["Resources"]["LogKmsKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Condition"] == "CreateLogKmsKey"
    assert deployed_sam["Conditions"]["CreateLogKmsKey"] == {"Fn::Equals": [{"Ref": "LogKmsKeyArn"}, ""]}
    assert key["Properties"]["EnableKeyRotation"] is True
    (topic,) = resources_of_type(deployed_sam, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == SAM_LOG_KEY
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    logs = statements["LogGroupsOfThisAccountAndRegion"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    # Every log group of the account in the region: the functions', the access logs', the worker's /ecs/...
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }
    assert statements["AlarmsPublishToTheEncryptedTopic"]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }

    resources = terraform["resource"]
    terraform_key = resources["aws_kms_key"]["logs"]
    assert terraform_key["count"] == "${var.log_kms_key_arn == null ? 1 : 0}"
    assert terraform_key["enable_key_rotation"] is True
    assert "logs.${data.aws_region.chalice.id}.amazonaws.com" in terraform_key["policy"]
    assert terraform["locals"]["log_kms_key_arn"] == (
        "${coalesce(var.log_kms_key_arn, one(aws_kms_key.logs[*].arn))}"
    )
    assert resources["aws_sns_topic"]["alarms"]["kms_master_key_id"] == "${local.log_kms_key_arn}"


def test_functions_refuse_unsigned_code_when_a_signing_profile_is_given(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    (config,) = resources_of_type(deployed_sam, "AWS::Lambda::CodeSigningConfig").values()
    assert config["Condition"] == "HasCodeSigning"
    assert config["Properties"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert config["Properties"]["AllowedPublishers"] == {
        "SigningProfileVersionArns": [{"Ref": "CodeSigningProfileVersionArn"}]
    }
    assert deployed_sam["Parameters"]["CodeSigningProfileVersionArn"]["Default"] == ""
    for function in sam_functions(deployed_sam).values():
        assert function["CodeSigningConfigArn"] == {
            "Fn::If": ["HasCodeSigning", {"Ref": "CodeSigningConfig"}, {"Ref": "AWS::NoValue"}]
        }

    terraform_config = terraform["resource"]["aws_lambda_code_signing_config"]["functions"]
    assert terraform_config["count"] == "${var.code_signing_profile_version_arn == null ? 0 : 1}"
    assert terraform_config["policies"] == {"untrusted_artifact_on_deployment": "Enforce"}
    for function in terraform_functions(terraform).values():
        assert (
            function["code_signing_config_arn"] == "${one(aws_lambda_code_signing_config.functions[*].arn)}"
        )


def test_the_api_function_runs_in_the_subnets_and_security_groups_given_as_parameters(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    api = sam_functions(deployed_sam)["app.app"]
    assert api["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    assert deployed_sam["Parameters"]["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert deployed_sam["Parameters"]["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    assert "Default" not in deployed_sam["Parameters"]["SubnetIds"]  # an operator must choose them

    terraform_api = terraform_functions(terraform)["app.app"]
    assert terraform_api["vpc_config"] == {
        "subnet_ids": "${var.subnet_ids}",
        "security_group_ids": "${var.security_group_ids}",
    }
    for name in ("subnet_ids", "security_group_ids"):
        assert terraform["variable"][name]["type"] == "list(string)"
        assert "default" not in terraform["variable"][name]
    assert "set-by-package-parameters" not in json.dumps([deployed_sam, terraform])


def test_a_web_acl_with_a_rate_rule_unless_one_is_given_and_tls_1_2_on_every_endpoint(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    (association,) = resources_of_type(deployed_sam, "AWS::WAFv2::WebACLAssociation").values()
    (web_acl,) = resources_of_type(deployed_sam, "AWS::WAFv2::WebACL").values()
    (domain,) = resources_of_type(deployed_sam, "AWS::ApiGateway::DomainName").values()
    (mapping,) = resources_of_type(deployed_sam, "AWS::ApiGateway::BasePathMapping").values()
    (rest_api,) = resources_of_type(deployed_sam, "AWS::ApiGateway::RestApi").values()

    # The stage always has a web ACL: the one given, or one the stack creates
    assert "Condition" not in association
    assert association["Properties"]["WebACLArn"] == {
        "Fn::If": ["HasWebAcl", {"Ref": "WebAclArn"}, {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}]
    }
    assert "/stages/${RestAPIapiStage}" in association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert web_acl["Condition"] == "CreateWebAcl"
    properties = web_acl["Properties"]
    assert (properties["Scope"], properties["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    rate, *managed = properties["Rules"]
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": {"Ref": "WafRateLimit"},
        "AggregateKeyType": "IP",
    }
    assert rate["Action"] == {"Block": {}}
    assert [rule["Statement"]["ManagedRuleGroupStatement"]["Name"] for rule in managed] == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    ]
    assert not any(rule["VisibilityConfig"]["SampledRequestsEnabled"] for rule in properties["Rules"])
    # TLS 1.2+ on the API's own endpoint, and on the optional custom domain
    assert rest_api["Properties"]["SecurityPolicy"] == "SecurityPolicy_TLS13_1_2_2021_06"
    assert rest_api["Properties"]["EndpointAccessMode"] == "STRICT"
    assert domain["Condition"] == mapping["Condition"] == "HasCustomDomain"
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    assert mapping["Properties"]["Stage"] == {"Ref": "RestAPIapiStage"}
    for parameter in ("WebAclArn", "DomainName", "CertificateArn"):
        assert deployed_sam["Parameters"][parameter]["Default"] == ""

    resources = terraform["resource"]
    waf = resources["aws_wafv2_web_acl_association"]["rest_api"]
    assert "count" not in waf and waf["web_acl_arn"] == "${local.web_acl_arn}"
    assert waf["resource_arn"] == "${aws_api_gateway_stage.rest_api.arn}"
    terraform_acl = resources["aws_wafv2_web_acl"]["rest_api"]
    assert terraform_acl["count"] == "${var.web_acl_arn == null ? 1 : 0}"
    assert terraform_acl["rule"][0]["statement"]["rate_based_statement"] == {
        "limit": "${var.waf_rate_limit}",
        "aggregate_key_type": "IP",
    }
    # The aws provider 5 has no argument for the API's security policy: the API definition carries it
    definition = terraform_definition(terraform)
    assert definition["x-amazon-apigateway-security-policy"] == "SecurityPolicy_TLS13_1_2_2021_06"
    assert definition["x-amazon-apigateway-endpoint-access-mode"] == "STRICT"
    terraform_domain = resources["aws_api_gateway_domain_name"]["rest_api"]
    assert terraform_domain["security_policy"] == "TLS_1_2"
    assert terraform_domain["count"] == resources["aws_api_gateway_base_path_mapping"]["rest_api"]["count"]
    for variable in ("web_acl_arn", "domain_name", "certificate_arn"):
        assert terraform["variable"][variable]["default"] is None


# IAM: every ARN scoped to this account, region and partition; the authorizer reaches only the token secret.

TOKEN_SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
    "secret:telehealth-api/prod/api-token-sha256-??????"  # Secrets Manager's six random characters
)
# The API's function alone also keys the Idempotency-Key request digests with its own secret.
IDEMPOTENCY_SECRET_ARN = TOKEN_SECRET_ARN.replace("api-token-sha256", "idempotency-key")
# Actions without resource-level permissions: describing the VPC's network interfaces and subnets, X-Ray.
ACTIONS_ON_ANY_RESOURCE = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# What Lambda does with a VPC function's role to manage its network interfaces: allowed on this account and
# region's interfaces, subnets and security groups, denied to the function's own code.
NETWORK_INTERFACE_WRITES = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
NETWORK_RESOURCES = {"network-interface/*", "subnet/*", "security-group/*"}
DENIED_TO_FUNCTION_CODE = {
    "Effect": "Deny",
    "Action": sorted(NETWORK_INTERFACE_WRITES),
    "Resource": "*",
    # Lambda adds the key to every call from inside the function's execution environment only.
    "Condition": {"Null": {"lambda:SourceFunctionArn": "false"}},
}


def denials(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deny statements, as comparable values (sorted actions, values as lists or strings alike)."""
    found = []
    for statement in statements:
        if statement["Effect"] != "Deny":
            continue
        condition = {
            test: {
                key: value[0] if isinstance(value, list) and len(value) == 1 else value
                for key, value in keys.items()
            }
            for test, keys in statement["Condition"].items()
        }
        resource = statement["Resource"]
        found.append(
            {
                "Effect": "Deny",
                "Action": sorted(statement["Action"]),
                "Resource": resource[0] if isinstance(resource, list) and len(resource) == 1 else resource,
                "Condition": condition,
            }
        )
    return found


def role_permissions(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Action -> the resources it is allowed on, ARNs as CloudFormation writes them (Fn::Sub or plain)."""
    permissions: dict[str, set[str]] = {}
    for statement in statements:
        if statement["Effect"] == "Deny":
            assert denials([statement]) == [DENIED_TO_FUNCTION_CODE]
            continue
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            permissions.setdefault(action, set()).update(
                r["Fn::Sub"] if isinstance(r, dict) else r for r in resources
            )
    return permissions


def sam_role_permissions(deployed_sam: dict[str, Any], handler: str) -> dict[str, set[str]]:
    role = sam_functions(deployed_sam)[handler]["Role"]["Fn::GetAtt"][0]
    (policy,) = deployed_sam["Resources"][role]["Properties"]["Policies"]
    return role_permissions(policy["PolicyDocument"]["Statement"])


def terraform_role_permissions(terraform: dict[str, Any], handler: str) -> dict[str, set[str]]:
    role = (
        terraform_functions(terraform)[handler]["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}")
    )
    return role_permissions(terraform_role_statements(terraform, role))


def terraform_role_statements(terraform: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of a role's policy: its aws_iam_policy_document data source, read back."""
    assert terraform["resource"]["aws_iam_role_policy"][role]["policy"] == (
        f"${{data.aws_iam_policy_document.{role}.json}}"
    )
    return list(policy_document_of(terraform["data"]["aws_iam_policy_document"][role])["Statement"])


def assert_scoped_to_the_account(
    permissions: dict[str, set[str]], *, sub: str, region: str, account: str
) -> None:
    for action, resources in permissions.items():
        if action in ACTIONS_ON_ANY_RESOURCE:
            assert resources == {"*"}, action
            continue
        for arn in resources:
            named = arn.replace(sub, "PARTITION").replace(region, "REGION").replace(account, "ACCOUNT")
            _arn, partition, _service, arn_region, arn_account, *rest = named.split(":")
            assert (partition, arn_region, arn_account) == ("PARTITION", "REGION", "ACCOUNT"), (action, arn)
            if action in NETWORK_INTERFACE_WRITES:
                assert rest[0] in NETWORK_RESOURCES, (action, arn)  # any of the account's, in the region
                continue
            assert "*" not in arn.removesuffix(":*"), (action, arn)  # only a log group's streams


def test_each_role_is_scoped_to_the_account_region_and_exact_resources_in_cloudformation(
    deployed_sam: dict[str, Any],
) -> None:
    functions = sam_functions(deployed_sam)
    api, authorizer = (
        sam_role_permissions(deployed_sam, h) for h in ("app.app", "app.authorize_bearer_token")
    )

    # Only the authorizer reads the token secret: API Gateway runs it before the API's function.
    assert api["secretsmanager:GetSecretValue"] == {IDEMPOTENCY_SECRET_ARN}
    assert authorizer["secretsmanager:GetSecretValue"] == {TOKEN_SECRET_ARN}
    for handler in functions:
        permissions = sam_role_permissions(deployed_sam, handler)
        assert_scoped_to_the_account(
            permissions, sub="${AWS::Partition}", region="${AWS::Region}", account="${AWS::AccountId}"
        )
        assert "logs:CreateLogGroup" not in permissions  # the template creates them, with retention
        # Each function writes only into its own log group.
        (log_group,) = permissions["logs:PutLogEvents"]
        assert log_group.endswith(f":log-group:/aws/lambda/{functions[handler]['FunctionName']}:*")
    assert api["ssm:GetParameter"] == {
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/telehealth-api/prod/database-url",
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/telehealth-api/prod/redis-url",
    }


def test_function_code_cannot_act_on_network_interfaces_lambda_manages_for_it(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    for handler in ("app.app", *SCHEDULED):  # the functions in the VPC
        role = sam_functions(deployed_sam)[handler]["Role"]["Fn::GetAtt"][0]
        (policy,) = deployed_sam["Resources"][role]["Properties"]["Policies"]
        terraform_role = (
            terraform_functions(terraform)[handler]["role"]
            .removeprefix("${aws_iam_role.")
            .removesuffix(".arn}")
        )
        for statements in (
            policy["PolicyDocument"]["Statement"],
            terraform_role_statements(terraform, terraform_role),
        ):
            assert denials(statements) == [DENIED_TO_FUNCTION_CODE], handler
            allowed = role_permissions(statements)
            assert set(allowed) >= NETWORK_INTERFACE_WRITES and "ec2:DescribeSubnets" in allowed
    authorizer_role = sam_functions(deployed_sam)["app.authorize_bearer_token"]["Role"]["Fn::GetAtt"][0]
    assert "ec2:" not in json.dumps(deployed_sam["Resources"][authorizer_role])  # not in the VPC


def test_the_authorizer_has_its_own_role_with_the_token_secret_only_and_no_vpc(
    deployed_sam: dict[str, Any], terraform: dict[str, Any]
) -> None:
    for permissions in (
        sam_role_permissions(deployed_sam, "app.authorize_bearer_token"),
        terraform_role_permissions(terraform, "app.authorize_bearer_token"),
    ):
        assert set(permissions) == {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }
    functions = sam_functions(deployed_sam)
    assert functions["app.authorize_bearer_token"]["Role"] != functions["app.app"]["Role"]
    assert "VpcConfig" not in functions["app.authorize_bearer_token"]
    assert "vpc_config" not in terraform_functions(terraform)["app.authorize_bearer_token"]
    variables = functions["app.authorize_bearer_token"]["Environment"]["Variables"]
    assert set(variables) == {"APP_STAGE", "API_TOKENS_SECRET_ID"}


def test_terraform_roles_name_the_account_region_and_partition_from_its_data_sources(
    terraform: dict[str, Any],
) -> None:
    for handler in ("app.app", "app.authorize_bearer_token", *SCHEDULED):
        permissions = terraform_role_permissions(terraform, handler)
        assert_scoped_to_the_account(
            permissions,
            sub="${data.aws_partition.chalice.partition}",
            region="${data.aws_region.chalice.id}",
            account="${data.aws_caller_identity.chalice.account_id}",
        )
        if handler in SCHEDULED:
            continue
        secrets = {IDEMPOTENCY_SECRET_ARN} if handler == "app.app" else {TOKEN_SECRET_ARN}
        assert permissions["secretsmanager:GetSecretValue"] == {
            arn.replace("${AWS::Partition}", "${data.aws_partition.chalice.partition}")
            .replace("${AWS::Region}", "${data.aws_region.chalice.id}")
            .replace("${AWS::AccountId}", "${data.aws_caller_identity.chalice.account_id}")
            for arn in secrets
        }
    assert "arn:*" not in json.dumps(terraform["data"]["aws_iam_policy_document"])


# Scheduled functions: an EventBridge rule at the configured rate, each function with its own role.

DEFAULTS = ScheduleSettings()
# Handler -> (rate, the SSM parameters its role reads): the relay needs the database and Redis, the purge
# the database only; neither reads the token secret. Both run in the VPC, where those are.
SCHEDULED = {
    "app.relay_notifications": (
        rate_every(DEFAULTS.relay_interval).to_string(),
        {"database-url", "redis-url"},
    ),
    "app.purge_expired_records": (rate_every(DEFAULTS.purge_interval).to_string(), {"database-url"}),
}
SSM_PARAMETER = "arn:{partition}:ssm:{region}:{account}:parameter/telehealth-api/prod/{name}"
CLOUDFORMATION_ACCOUNT = {
    "partition": "${AWS::Partition}",
    "region": "${AWS::Region}",
    "account": "${AWS::AccountId}",
}
TERRAFORM_ACCOUNT = {
    "partition": "${data.aws_partition.chalice.partition}",
    "region": "${data.aws_region.chalice.id}",
    "account": "${data.aws_caller_identity.chalice.account_id}",
}


def test_each_scheduled_function_has_an_eventbridge_rule_at_its_rate_in_cloudformation(
    deployed_sam: dict[str, Any],
) -> None:
    functions = {
        r["Properties"]["Handler"]: name
        for name, r in resources_of_type(deployed_sam, "AWS::Lambda::Function").items()
    }
    rules = resources_of_type(deployed_sam, "AWS::Events::Rule")
    permissions = resources_of_type(deployed_sam, "AWS::Lambda::Permission")

    for handler, (rate, _parameters) in SCHEDULED.items():
        function = functions[handler]
        (rule_name,) = [
            name
            for name, rule in rules.items()
            if rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
        ]
        assert rules[rule_name]["Properties"]["ScheduleExpression"] == rate
        assert [
            p["Properties"]["Principal"]
            for p in permissions.values()
            if p["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_name, "Arn"]}
        ] == ["events.amazonaws.com"]


def test_each_scheduled_function_has_a_rule_target_and_permission_in_terraform(
    terraform: dict[str, Any],
) -> None:
    resources = terraform["resource"]
    functions = {f["handler"]: name for name, f in resources["aws_lambda_function"].items()}

    for handler, (rate, _parameters) in SCHEDULED.items():
        function = functions[handler]
        (rule_name,) = [
            name
            for name, target in resources["aws_cloudwatch_event_target"].items()
            if target["arn"] == f"${{aws_lambda_function.{function}.arn}}"
        ]
        rule = resources["aws_cloudwatch_event_rule"][rule_name]
        assert rule["schedule_expression"] == rate
        # Named after its function, app and stage included: another stage in the account has its own.
        assert rule["name"] == resources["aws_lambda_function"][function]["function_name"]
        assert rule["tags"]["data-classification"] == "phi"
        assert (
            resources["aws_cloudwatch_event_target"][rule_name]["rule"]
            == f"${{aws_cloudwatch_event_rule.{rule_name}.name}}"
        )
        permission = resources["aws_lambda_permission"][rule_name]
        assert permission["principal"] == "events.amazonaws.com"
        assert permission["source_arn"] == f"${{aws_cloudwatch_event_rule.{rule_name}.arn}}"


@pytest.mark.parametrize("handler", sorted(SCHEDULED))
def test_each_scheduled_function_has_its_own_role_with_only_what_it_needs(
    deployed_sam: dict[str, Any], terraform: dict[str, Any], handler: str
) -> None:
    _rate, parameters = SCHEDULED[handler]
    functions = sam_functions(deployed_sam)
    sides = (
        (sam_role_permissions(deployed_sam, handler), CLOUDFORMATION_ACCOUNT),
        (terraform_role_permissions(terraform, handler), TERRAFORM_ACCOUNT),
    )

    for permissions, account in sides:
        assert (
            set(permissions)
            == {"logs:CreateLogStream", "logs:PutLogEvents", "ssm:GetParameter"}
            | ACTIONS_ON_ANY_RESOURCE
            | NETWORK_INTERFACE_WRITES
        )
        assert permissions["ssm:GetParameter"] == {
            SSM_PARAMETER.format(**account, name=name) for name in parameters
        }
    roles = {function["Role"]["Fn::GetAtt"][0] for function in functions.values()}
    assert len(roles) == len(functions), "no two functions share a role"
    variables = functions[handler]["Environment"]["Variables"]
    assert {name for name in variables if name.endswith("_PARAMETER")} == {
        f"{name.upper().replace('-', '_')}_PARAMETER" for name in parameters
    }
    assert "VpcConfig" in functions[handler]
    assert "vpc_config" in terraform_functions(terraform)[handler]
