"""Bearer-token authentication: the one authorizer that guards every patient route.

A valid token (``chalicelib.access.identity`` says whose it is) yields an
allow policy carrying the token's principal and scopes; anything else yields
a deny. API Gateway turns the deny (and a missing header) into a 401 with our
error body through the gateway responses in ``chalicelib.http.gateway_responses``;
``chalice local`` and ``chalice.test.Client`` are given the same behaviour
there. Whether the scopes suffice for a route is decided after, in
``chalicelib.http.routes``, so that a token that is valid but not allowed gets
a 403 of its own.
"""

from __future__ import annotations

from chalice.app import AuthRequest, AuthResponse

from chalicelib.observability.metrics import record_authorizer_refusal
from chalicelib.scopes import scope_string

ANONYMOUS = "anonymous"
# API Gateway caches an authorizer's answer per token this long (its default: 300 s). With the
# digests' own cache (TOKEN_CACHE_SECONDS, 60 s) a removed token stops working within 2 minutes.
AUTHORIZER_CACHE_SECONDS = 60


def authorize_bearer_token(auth_request: AuthRequest) -> AuthResponse:
    # Imported on first use: the API's function registers this authorizer but never runs it (API
    # Gateway runs the authorizer's own function), so its cold start does not pay for token parsing.
    from chalicelib.access.identity import identify
    from chalicelib.bootstrap import auth_settings

    identity = identify(auth_request.token, auth_settings())
    if identity is None:
        record_authorizer_refusal()
        return AuthResponse(routes=[], principal_id=ANONYMOUS)
    return AuthResponse(
        routes=["*"],
        principal_id=identity.principal,
        context={"principal": identity.principal, "scopes": scope_string(identity.scopes)},
    )
