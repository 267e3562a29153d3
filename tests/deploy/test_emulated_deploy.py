"""A full ``prod`` deploy against moto_server, a redeploy, and ``delete``, with chalice's own deployer.

Runs ``python -m deploy.chalice_cli --emulator`` (chalice's CLI; the API
definition is replayed because moto cannot import Swagger 2.0) from a copy of
the project, so the checkout's ``.chalice/deployed/`` is never touched.
moto cannot run the functions (no Docker): invoking them is test_artifact's job.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.http.gateway_responses import GATEWAY_RESPONSES
from tests.helpers.api import app_routes

PROJECT_FILES = ("app.py", "requirements.txt", "chalicelib", "functions", "vendor")
FUNCTIONS = {
    "telehealth-api-prod": "app.app",
    "telehealth-api-prod-bearer_token": "app.authorize_bearer_token",
}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    (copy / ".chalice").mkdir()
    for config in (PROJECT_ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, copy / ".chalice" / config.name)
    if (PROJECT_ROOT / ".chalice" / "deployments").is_dir():  # chalice's wheel cache: no second download
        shutil.copytree(PROJECT_ROOT / ".chalice" / "deployments", copy / ".chalice" / "deployments")
    return copy


def chalice(endpoint: str, project: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(project), "AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
    command = [sys.executable, "-m", "deploy.chalice_cli", "--emulator", "--project-dir", str(project), *args]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def aws(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def deployed_api(endpoint: str) -> dict[str, Any]:
    """What API Gateway and Lambda hold for the app, read back through their APIs."""
    apigateway, lambda_ = aws(endpoint, "apigateway"), aws(endpoint, "lambda")
    functions = {f["FunctionName"]: f for f in lambda_.list_functions()["Functions"]}
    apis = [a for a in apigateway.get_rest_apis()["items"] if a["name"] == "telehealth-api"]
    state: dict[str, Any] = {"functions": functions, "apis": apis}
    if len(apis) == 1:
        api_id = apis[0]["id"]
        resources = apigateway.get_resources(restApiId=api_id, embed=["methods"])["items"]
        state["methods"] = {
            (resource["path"], verb): apigateway.get_method(
                restApiId=api_id, resourceId=resource["id"], httpMethod=verb
            )
            for resource in resources
            for verb in resource.get("resourceMethods", {})
        }
        state["authorizers"] = apigateway.get_authorizers(restApiId=api_id)["items"]
        state["gateway_responses"] = {
            r["responseType"]: r
            for r in apigateway.get_gateway_responses(restApiId=api_id)["items"]
            if not r.get("defaultResponse")
        }
        state["stages"] = [s["stageName"] for s in apigateway.get_stages(restApiId=api_id)["item"]]
    return state


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str, project_copy: Path) -> dict[str, Any]:
    chalice(moto_endpoint, project_copy, "deploy", "--stage", "prod")
    # A second deploy takes the update path, which replaces the API definition.
    chalice(moto_endpoint, project_copy, "deploy", "--stage", "prod")
    return deployed_api(moto_endpoint)


def test_both_functions_exist_with_their_handlers_and_prod_settings(deployed: dict[str, Any]) -> None:
    functions = deployed["functions"]

    assert {name: functions[name]["Handler"] for name in FUNCTIONS} == FUNCTIONS
    for name in FUNCTIONS:
        variables = functions[name]["Environment"]["Variables"]
        assert variables["APP_STAGE"] == "prod"
        # Only the authorizer reads the token secret: API Gateway runs it before the API's function.
        expected = "telehealth-api/prod/api-token-sha256" if name.endswith("bearer_token") else None
        assert variables.get("API_TOKENS_SECRET_ID") == expected
        assert functions[name]["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_the_rest_api_has_every_route_and_the_token_authorizer_on_the_protected_ones(
    deployed: dict[str, Any],
) -> None:
    assert len(deployed["apis"]) == 1
    (authorizer,) = deployed["authorizers"]
    assert authorizer["name"] == "bearer_token" and authorizer["type"] == "TOKEN"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert "function:telehealth-api-prod-bearer_token/invocations" in authorizer["authorizerUri"]

    routes = app_routes()
    # Each path also has ANY, without authorizer, for the methods it does not declare (405).
    routes.update({(path, "ANY"): False for path, _method in app_routes()})
    assert set(deployed["methods"]) == set(routes)
    for route, method in deployed["methods"].items():
        if routes[route]:
            assert method["authorizationType"] == "CUSTOM", route
            assert method["authorizerId"] == authorizer["id"], route
        else:
            assert method["authorizationType"] == "NONE", route
        assert method["methodIntegration"]["type"] == "AWS_PROXY"
        assert "function:telehealth-api-prod/invocations" in method["methodIntegration"]["uri"]
    assert any(routes.values()) and not all(routes.values())  # both kinds were checked
    assert deployed["stages"] == ["api"]


def test_gateway_responses_survive_the_redeploy(deployed: dict[str, Any]) -> None:
    responses = deployed["gateway_responses"]

    assert {kind: r.get("statusCode") for kind, r in responses.items()} == {
        kind: None if response.status is None else str(response.status)
        for kind, response in GATEWAY_RESPONSES.items()
    }


def test_delete_removes_the_functions_and_the_api(
    deployed: dict[str, Any], moto_endpoint: str, project_copy: Path
) -> None:
    output = chalice(moto_endpoint, project_copy, "delete", "--stage", "prod")

    remaining = deployed_api(moto_endpoint)
    assert not set(FUNCTIONS) & set(remaining["functions"]), output
    assert remaining["apis"] == []
    roles = {r["RoleName"] for r in aws(moto_endpoint, "iam").list_roles()["Roles"]}
    assert not {r for r in roles if r.startswith("telehealth-api-prod")}
