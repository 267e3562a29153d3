"""What the gateway answers when the authorizer refuses a request.

API Gateway answers a missing ``Authorization`` header with its UNAUTHORIZED
response (401) and an authorizer's deny with ACCESS_DENIED (403, aws/chalice#971).
We configure both as 401 with our JSON error body, and teach the local
gateway of ``chalice local`` and ``chalice.test.Client`` to do the same, so the
authorizer stays the gate and every stage answers alike.
"""

from __future__ import annotations

import json
from typing import Any

UNAUTHORIZED_STATUS = 401
UNAUTHORIZED_BODY = {"code": "unauthorized", "message": "Missing or invalid bearer token"}
# API Gateway response types that mean "no valid credentials", all answered as above.
UNAUTHORIZED_RESPONSE_TYPES = ("UNAUTHORIZED", "ACCESS_DENIED")


def unauthorized_body_bytes() -> bytes:
    return json.dumps(UNAUTHORIZED_BODY).encode()


def emulate_in_local_gateway() -> None:
    """Make chalice's local gateway answer refused requests as our API Gateway does."""
    from chalice import local

    authorizer_class: Any = local.LocalGatewayAuthorizer
    if getattr(authorizer_class, "_answers_unauthorized_with_401", False):
        return
    authorize = authorizer_class.authorize

    def authorize_with_gateway_responses(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return authorize(self, *args, **kwargs)
        except (local.NotAuthorizedError, local.ForbiddenError) as refused:
            headers = dict(refused.headers, **{"Content-Type": "application/json"})
            raise local.NotAuthorizedError(headers, unauthorized_body_bytes()) from None

    authorizer_class.authorize = authorize_with_gateway_responses
    authorizer_class._answers_unauthorized_with_401 = True
