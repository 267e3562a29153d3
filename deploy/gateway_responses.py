"""The API Gateway form of ``chalicelib.gateway_responses``, for the packaged templates.

The responses go into the API definition itself (the OpenAPI extension
``x-amazon-apigateway-gateway-responses``), not into separate GatewayResponse
resources: the definition is what SAM and Terraform hash to decide on a new
deployment, so a change to a response is always deployed, and a redeploy of the
API can never drop them (a known failure of stand-alone GatewayResponse
resources: aws/serverless-application-model#390, #623).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.gateway_responses import GATEWAY_RESPONSE_HEADERS, GATEWAY_RESPONSES

SWAGGER_EXTENSION = "x-amazon-apigateway-gateway-responses"
# The logical id chalice gives the REST API in its SAM template.
SAM_REST_API = "RestAPI"


def swagger_gateway_responses() -> dict[str, Any]:
    """``x-amazon-apigateway-gateway-responses``: each response type with our status, headers and body."""
    return {
        response_type: {
            "statusCode": str(status),
            "responseParameters": {
                f"gatewayresponse.header.{name}": f"'{value}'"
                for name, value in GATEWAY_RESPONSE_HEADERS.items()
            },
            "responseTemplates": {"application/json": _static_template(body)},
        }
        for response_type, (status, body) in GATEWAY_RESPONSES.items()
    }


def _static_template(body: dict[str, str]) -> str:
    text = json.dumps(body)
    # Response templates are Velocity templates: '$' and '#' would be read as code.
    if "$" in text or "#" in text:
        raise ValueError(f"gateway response body must be static JSON, got {text}")
    return text


def with_gateway_responses(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of an API definition (chalice's Swagger document) carrying our gateway responses."""
    return {**definition, SWAGGER_EXTENSION: swagger_gateway_responses()}


def sam_merge_template() -> dict[str, Any]:
    """The template ``chalice package --merge-template`` deep-merges into chalice's SAM output."""
    definition = {SWAGGER_EXTENSION: swagger_gateway_responses()}
    return {"Resources": {SAM_REST_API: {"Properties": {"DefinitionBody": definition}}}}
