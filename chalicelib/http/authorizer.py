"""Bearer-token authentication: the one authorizer that guards every patient route.

A valid token yields an allow policy carrying the token's principal and
scopes; anything else yields a deny. API Gateway turns the deny (and a missing
header) into a 401 with our error body through the gateway responses in
``chalicelib.http.gateway_responses``; ``chalice local`` and ``chalice.test.Client``
are given the same behaviour there. Whether the scopes suffice for a route is
decided after, in ``chalicelib.http.routes``, so that a token that is valid but not
allowed gets a 403 of its own.

Tokens are static (their SHA-256 configured) or, when JWT_* settings are
given, signed JWTs; PyJWT is imported only for those.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from chalice.app import AuthRequest, AuthResponse

from chalicelib.access.scopes import parse_scope_string, scope_string
from chalicelib.config.settings import JwtSettings, get_settings, token_sha256

ANONYMOUS = "anonymous"
# Claims a JWT must carry; PyJWT checks the values of exp, iss and aud.
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Clock skew tolerated between the token's issuer and Lambda.
JWT_LEEWAY_SECONDS = 30

logger = logging.getLogger("telehealth.auth")


@dataclass(frozen=True)
class Identity:
    principal: str
    scopes: frozenset[str]


def identify(authorization: str | None) -> Identity | None:
    """The identity behind a ``Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    identity = _static_token_identity(token)
    jwt_settings = get_settings().jwt
    if identity is None and jwt_settings is not None and token.count(".") == 2:
        identity = _jwt_identity(token, jwt_settings)
    return identity


def principal_for(authorization: str | None) -> str | None:
    """Return the principal of a ``Bearer <token>`` header value, or None."""
    identity = identify(authorization)
    return identity.principal if identity else None


def _static_token_identity(token: str) -> Identity | None:
    presented = token_sha256(token)
    identity = None
    # Compare against every configured digest, so timing does not tell which matched.
    for candidate in get_settings().token_digests:
        if hmac.compare_digest(presented, candidate.sha256) and identity is None:
            identity = Identity(candidate.principal, candidate.scopes)
    return identity


def _jwt_identity(token: str, settings: JwtSettings) -> Identity | None:
    import jwt

    try:
        algorithm = str(jwt.get_unverified_header(token).get("alg"))
        # One algorithm per key, so a token can never choose how it is checked (no RS256/HS256 confusion).
        key = {"HS256": settings.hs256_secret, "RS256": settings.rs256_public_key}.get(algorithm)
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        # The reason only, never the token or its claims.
        logger.info("JWT refused: %s", type(error).__name__)
        return None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return None
    return Identity(subject, parse_scope_string(claims.get("scope")))


def authorize_bearer_token(auth_request: AuthRequest) -> AuthResponse:
    identity = identify(auth_request.token)
    if identity is None:
        return AuthResponse(routes=[], principal_id=ANONYMOUS)
    return AuthResponse(
        routes=["*"],
        principal_id=identity.principal,
        context={"principal": identity.principal, "scopes": scope_string(identity.scopes)},
    )
