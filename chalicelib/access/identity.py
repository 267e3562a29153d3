"""Who presents a bearer token: a static token's digest or a signed JWT, checked without Chalice.

Tokens are static (their SHA-256 configured) or, when JWT_* settings are
given, signed JWTs; PyJWT is imported only for those. The authorizer in
``chalicelib.http.authorizer`` turns the answer into API Gateway's policy.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.config.settings import AuthSettings, JwtSettings
from chalicelib.config.tokens import B64TOKEN, token_sha256
from chalicelib.scopes import jwt_scopes

# Claims a JWT must carry; PyJWT checks the values of exp, iss and aud.
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# Clock skew tolerated between the token's issuer and Lambda.
JWT_LEEWAY_SECONDS = 30
# A JWT's principal is jwt:<issuer>:<sub>, never a static token's name (those hold no ':').
# sub reaches logs and the audit trail: a short, printable alphabet (Auth0's "auth0|…", Cognito's UUIDs).
SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9._@|+:-]{1,128}")
# RFC 6750 section 2.1: the scheme (any case), one space or more, a b64token, and nothing else.
BEARER_CREDENTIALS = re.compile(rf"(?i:bearer) +({B64TOKEN.pattern})")

logger = logging.getLogger("telehealth.auth")


@dataclass(frozen=True)
class Identity:
    principal: str
    scopes: frozenset[str]


def identify(authorization: str | None, auth: AuthSettings) -> Identity | None:
    """The identity behind a ``Bearer <token>`` header value under ``auth``'s tokens, or None."""
    credentials = BEARER_CREDENTIALS.fullmatch(authorization or "")
    if credentials is None:  # a stray character before, inside or after the token is no token
        return None
    token = credentials.group(1)
    identity = _static_token_identity(token, auth)
    if identity is None and auth.jwt is not None and token.count(".") == 2:
        identity = _jwt_identity(token, auth.jwt)
    return identity


def _static_token_identity(token: str, auth: AuthSettings) -> Identity | None:
    presented = token_sha256(token)
    identity = None
    # Compare against every configured digest, so timing does not tell which matched.
    for candidate in auth.current_token_digests():
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
    if not isinstance(subject, str) or not SUBJECT_PATTERN.fullmatch(subject):
        logger.info("JWT refused: sub is not 1-128 letters, digits or . _ @ | + : -")
        return None
    return Identity(f"jwt:{settings.issuer}:{subject}", jwt_scopes(claims.get("scope")))
