"""The API Gateway form of ``chalicelib.http.gateway_responses``, for ``make package`` and ``chalice deploy``.

``for_api_gateway`` completes chalice's Swagger document with what API Gateway
must answer our way:

* our gateway responses (the OpenAPI extension ``x-amazon-apigateway-gateway-responses``),
  each with two body templates, our JSON and a FHIR OperationOutcome, which API Gateway
  chooses between by the request's ``Accept``,
  put into the API definition itself, not into separate GatewayResponse resources:
  the definition is what SAM and Terraform hash to decide on a new deployment,
  so a change to a response is always deployed, and a redeploy of the API can
  never drop them (a known failure of stand-alone GatewayResponse resources:
  aws/serverless-application-model#390, #623);
* an ANY method on every path, integrated with the function the path's methods
  call and without authorizer. API Gateway takes an explicit method first, so
  ANY carries only the methods a path does not declare, which would otherwise
  get MISSING_AUTHENTICATION_TOKEN (our 404): Chalice's router in the function
  answers them 405 with ``Allow``, as it does locally.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.http.gateway_responses import (
    FHIR_MEDIA_TYPE,
    GATEWAY_RESPONSE_HEADERS,
    GATEWAY_RESPONSES,
    GatewayResponse,
    fhir_outcome,
)

SWAGGER_EXTENSION = "x-amazon-apigateway-gateway-responses"
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
# The one variable a response template may use: the request id API Gateway also sends in x-amzn-RequestId.
REQUEST_ID_VARIABLE = "$context.requestId"
# The logical id chalice gives the REST API in its SAM template.
SAM_REST_API = "RestAPI"


def for_api_gateway(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of an API definition (chalice's Swagger document) with our gateway responses and ANY methods."""
    return {**with_any_method(definition), SWAGGER_EXTENSION: swagger_gateway_responses()}


def sam_template_for_api_gateway(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of chalice's SAM template whose REST API definition is ``for_api_gateway``'s."""
    rest_api = template["Resources"][SAM_REST_API]
    properties = {
        **rest_api["Properties"],
        "DefinitionBody": for_api_gateway(rest_api["Properties"]["DefinitionBody"]),
    }
    resources = {**template["Resources"], SAM_REST_API: {**rest_api, "Properties": properties}}
    return {**template, "Resources": resources}


def swagger_gateway_responses() -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses``: each response type with our status, headers and body."""
    return {
        response_type: {
            **({"statusCode": str(response.status)} if response.status is not None else {}),
            "responseParameters": {
                f"gatewayresponse.header.{name}": _static_header_value(value)
                for name, value in {**GATEWAY_RESPONSE_HEADERS, **response.headers}.items()
            },
            "responseTemplates": {
                "application/json": _body_template({**response.body, "request_id": REQUEST_ID_VARIABLE}),
                FHIR_MEDIA_TYPE: _body_template(_fhir_template_body(response)),
            },
        }
        for response_type, response in GATEWAY_RESPONSES.items()
    }


def _fhir_template_body(response: GatewayResponse) -> dict[str, Any]:
    return fhir_outcome(response, REQUEST_ID_VARIABLE)


def _body_template(body: Mapping[str, Any]) -> str:
    text = json.dumps(body)
    # Response templates are Velocity templates: any other '$' or '#' would be read as code.
    static = text.replace(REQUEST_ID_VARIABLE, "")
    if "$" in static or "#" in static:
        raise ValueError(f"gateway response body must be static JSON, got {text}")
    return text


def _static_header_value(value: str) -> str:
    if "'" in value:  # the value is a quoted literal, not a mapping expression
        raise ValueError(f"gateway response header values cannot hold a single quote, got {value}")
    return f"'{value}'"


def with_any_method(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``definition`` where every path also has an ANY method, without authorizer."""
    paths = {}
    for path, operations in definition.get("paths", {}).items():
        declared = [op for method, op in operations.items() if INTEGRATION in op and method != ANY_METHOD]
        integrations = {json.dumps(op[INTEGRATION], sort_keys=True) for op in declared}
        if len(integrations) != 1:
            raise ValueError(f"{path}: its methods must share one Lambda integration to add ANY")
        path_parameters = [p for p in declared[0].get("parameters", []) if p.get("in") == "path"]
        paths[path] = {
            **operations,
            ANY_METHOD: {
                "consumes": ["*/*"],
                "produces": ["application/json"],
                "responses": {"405": {"description": "A method this path does not declare"}},
                INTEGRATION: declared[0][INTEGRATION],
                **({"parameters": path_parameters} if path_parameters else {}),
            },
        }
    return {**definition, "paths": paths}


def select_operation(definition: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    """The operation API Gateway runs for ``method`` on the resource ``path``: an explicit method
    before ANY; None when neither exists (MISSING_AUTHENTICATION_TOKEN)."""
    operations = definition["paths"].get(path, {})
    found = operations.get(method.lower()) or operations.get(ANY_METHOD)
    return dict(found) if found is not None else None
