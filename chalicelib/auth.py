"""Bearer-token authentication: the one authorizer that guards every patient route.

A valid token yields an allow policy carrying the token's principal; anything
else yields a deny. API Gateway turns the deny (and a missing header) into a
401 with our error body through the gateway responses in
``chalicelib.gateway_responses``; ``chalice local`` and ``chalice.test.Client``
are given the same behaviour there.
"""

from __future__ import annotations

import hmac

from chalice.app import AuthRequest, AuthResponse

from chalicelib.config import get_settings, token_sha256

ANONYMOUS = "anonymous"


def principal_for(authorization: str | None) -> str | None:
    """Return the principal of a ``Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    presented = token_sha256(token)
    principal = None
    # Compare against every configured digest, so timing does not tell which matched.
    for candidate in get_settings().token_digests:
        if hmac.compare_digest(presented, candidate.sha256) and principal is None:
            principal = candidate.principal
    return principal


def authorize_bearer_token(auth_request: AuthRequest) -> AuthResponse:
    principal = principal_for(auth_request.token)
    if principal is None:
        return AuthResponse(routes=[], principal_id=ANONYMOUS)
    return AuthResponse(routes=["*"], principal_id=principal, context={"principal": principal})
