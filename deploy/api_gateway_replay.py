"""Build a REST API from chalice's Swagger 2.0 document with plain API Gateway calls.

Only for moto: its ImportRestApi / PutRestApi read OpenAPI 3 alone and ignore
security schemes, so chalice's document cannot be imported there. The replay
gives the same result the import gives in AWS, for what chalice generates for
this app: resources, methods (with their authorizer), Lambda proxy
integrations (ANY included), custom TOKEN authorizers and gateway responses. Like
``PutRestApi(mode=overwrite)`` it first removes what the API had.
"""

from __future__ import annotations

from typing import Any

from deploy.gateway_responses import ANY_METHOD, SWAGGER_EXTENSION

CUSTOM_AUTHORIZER = "custom"


def replay_definition(client: Any, rest_api_id: str, definition: dict[str, Any]) -> None:
    root_id = _clear(client, rest_api_id)
    authorizer_ids = {
        name: _create_authorizer(client, rest_api_id, name, scheme)
        for name, scheme in definition.get("securityDefinitions", {}).items()
    }
    resource_ids = {"/": root_id}
    for path, operations in sorted(definition["paths"].items()):
        resource_id = _resource_for(client, rest_api_id, path, resource_ids)
        for method, operation in operations.items():
            http_method = "ANY" if method == ANY_METHOD else method.upper()
            _put_operation(client, rest_api_id, resource_id, http_method, operation, authorizer_ids)
    for response_type, response in definition.get(SWAGGER_EXTENSION, {}).items():
        client.put_gateway_response(
            restApiId=rest_api_id,
            responseType=response_type,
            **({"statusCode": response["statusCode"]} if "statusCode" in response else {}),
            responseParameters=response.get("responseParameters", {}),
            responseTemplates=response.get("responseTemplates", {}),
        )


def _clear(client: Any, rest_api_id: str) -> str:
    resources = client.get_resources(restApiId=rest_api_id, limit=500)["items"]
    root_id = next(r["id"] for r in resources if r["path"] == "/")
    for resource in sorted(resources, key=lambda r: -len(r["path"])):
        if resource["path"] != "/":
            client.delete_resource(restApiId=rest_api_id, resourceId=resource["id"])
    for method in client.get_resource(restApiId=rest_api_id, resourceId=root_id).get("resourceMethods", {}):
        client.delete_method(restApiId=rest_api_id, resourceId=root_id, httpMethod=method)
    for authorizer in client.get_authorizers(restApiId=rest_api_id)["items"]:
        client.delete_authorizer(restApiId=rest_api_id, authorizerId=authorizer["id"])
    for response in client.get_gateway_responses(restApiId=rest_api_id)["items"]:
        if not response.get("defaultResponse", False):
            client.delete_gateway_response(restApiId=rest_api_id, responseType=response["responseType"])
    return str(root_id)


def _create_authorizer(client: Any, rest_api_id: str, name: str, scheme: dict[str, Any]) -> str:
    if scheme.get("x-amazon-apigateway-authtype") != CUSTOM_AUTHORIZER:
        raise NotImplementedError(f"authorizer {name!r}: only custom (Lambda) authorizers are replayed")
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    created = client.create_authorizer(
        restApiId=rest_api_id,
        name=name,
        type=authorizer["type"].upper(),
        authorizerUri=authorizer["authorizerUri"],
        identitySource=authorizer.get("identitySource", f"method.request.header.{scheme['name']}"),
        **(
            {"authorizerResultTtlInSeconds": authorizer["authorizerResultTtlInSeconds"]}
            if "authorizerResultTtlInSeconds" in authorizer
            else {}
        ),
    )
    return str(created["id"])


def _resource_for(client: Any, rest_api_id: str, path: str, resource_ids: dict[str, str]) -> str:
    parent = "/"
    for part in filter(None, path.split("/")):
        current = parent.rstrip("/") + "/" + part
        if current not in resource_ids:
            created = client.create_resource(
                restApiId=rest_api_id, parentId=resource_ids[parent], pathPart=part
            )
            resource_ids[current] = created["id"]
        parent = current
    return resource_ids[path]


def _put_operation(
    client: Any,
    rest_api_id: str,
    resource_id: str,
    method: str,
    operation: dict[str, Any],
    authorizer_ids: dict[str, str],
) -> None:
    authorizers = [name for requirement in operation.get("security", []) for name in requirement]
    authorization = {"authorizationType": "NONE"}
    if authorizers:
        authorization = {"authorizationType": "CUSTOM", "authorizerId": authorizer_ids[authorizers[0]]}
    client.put_method(restApiId=rest_api_id, resourceId=resource_id, httpMethod=method, **authorization)
    integration = operation["x-amazon-apigateway-integration"]
    client.put_integration(
        restApiId=rest_api_id,
        resourceId=resource_id,
        httpMethod=method,
        type=integration["type"].upper(),
        uri=integration["uri"],
        integrationHttpMethod=integration["httpMethod"],
        passthroughBehavior=integration.get("passthroughBehavior", "when_no_match").upper(),
        contentHandling=integration.get("contentHandling", "CONVERT_TO_TEXT"),
    )
    for status in operation.get("responses", {}):
        client.put_method_response(
            restApiId=rest_api_id, resourceId=resource_id, httpMethod=method, statusCode=status
        )
