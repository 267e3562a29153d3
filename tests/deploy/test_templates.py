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

from chalicelib.http.gateway_responses import (
    GATEWAY_RESPONSES,
    ROUTE_NOT_FOUND_BODY,
    UNAUTHORIZED_BODY,
)
from deploy.gateway_responses import ANY_METHOD, INTEGRATION, select_operation
from deploy.package import PackageOutput
from deploy.terraform import modernize
from tests.helpers import app_routes

GATEWAY_RESPONSES_KEY = "x-amazon-apigateway-gateway-responses"


@pytest.fixture(scope="module")
def sam(lambda_package: PackageOutput) -> dict[str, Any]:
    return dict(json.loads(lambda_package.sam_template.read_text()))


@pytest.fixture(scope="module")
def terraform(lambda_package: PackageOutput) -> dict[str, Any]:
    return dict(json.loads(lambda_package.terraform_config.read_text()))


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


def translate_sam(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation deploys: the SAM transform, run offline (code location made an S3 URI)."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    return dict(transform(template, {}, NoManagedPolicies()))


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
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
        variables = properties["Environment"]["Variables"]
        assert variables["APP_STAGE"] == "prod"
        assert {"API_TOKENS_SECRET_ID", "DATABASE_URL_PARAMETER"} <= set(variables)
        assert not {"DATABASE_URL", "API_TOKENS", "API_TOKEN_SHA256"} & set(variables)


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
    assert resources["aws_api_gateway_stage"]["rest_api"] == {
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
