"""Events as Lambda receives them: API Gateway's REST proxy requests and TOKEN authorizer calls,
and EventBridge's scheduled events."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.http.schedules import scheduled_event

API_ID = "a1b2c3d4e5"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STAGE = "api"
HOST = f"{API_ID}.execute-api.{REGION}.amazonaws.com"


def schedule_event(function_name: str) -> dict[str, Any]:
    """What EventBridge sends a scheduled function (``app.<function_name>``) of the prod stage."""
    return scheduled_event(f"telehealth-api-prod-{function_name}")


def method_arn(method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method}{path}"


def token_event(authorization: str, method: str, path: str) -> dict[str, Any]:
    """What API Gateway sends a TOKEN authorizer: the header's value and the method's ARN."""
    return {"type": "TOKEN", "authorizationToken": authorization, "methodArn": method_arn(method, path)}


def authorizer_context(policy: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway puts in ``requestContext.authorizer`` after an allow."""
    return {"principalId": policy["principalId"], "integrationLatency": 12, **policy.get("context", {})}


def allowed_token_context(principal: str, scopes: str) -> dict[str, Any]:
    """``requestContext.authorizer`` for a token our authorizer allowed (API Gateway caches this)."""
    policy = {"principalId": principal, "context": {"principal": principal, "scopes": scopes}}
    return authorizer_context(policy)


def rest_event(
    method: str,
    resource: str,
    path: str,
    *,
    authorizer: dict[str, Any] | None,
    authorization: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> dict[str, Any]:
    """An API Gateway REST API proxy integration event (payload format 1.0)."""
    headers = {
        "Accept": accept,
        "CloudFront-Forwarded-Proto": "https",
        "Host": HOST,
        "User-Agent": "clinic-app/2.3",
        "Via": "1.1 0123456789abcdef.cloudfront.net (CloudFront)",
        "X-Amzn-Trace-Id": "Root=1-6543a1b2-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.10, 130.176.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if authorization is not None:
        headers["Authorization"] = authorization
    raw_body = None
    if body is not None:
        headers["Content-Type"] = content_type
        raw_body = body if isinstance(body, str) else json.dumps(body)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "Ab1Cd2Ef3Gh=",
            "requestTime": "25/Nov/2026:12:00:00 +0000",
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": 1795608000000,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "203.0.113.10",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "clinic-app/2.3",
                "user": None,
            },
            "domainName": HOST,
            "apiId": API_ID,
            **({"authorizer": authorizer} if authorizer is not None else {}),
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }
