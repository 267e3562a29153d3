"""Static bearer tokens: API_TOKENS and API_TOKEN_SHA256, kept as SHA-256 digests only.

Entries read ``principal:secret`` or ``principal[scope scope]:secret``,
separated by commas. The ``dev`` stage without any falls back to the seed's
published development token, which the ``prod`` stage refuses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config.environment import ConfigurationError
from chalicelib.scopes import ALL_SCOPES, DEFAULT_SCOPES

DEVELOPMENT_TOKEN = "secret-token-123"  # noqa: S105 - the seed's documented token, dev stage only
DEVELOPMENT_PRINCIPAL = "development"


@dataclass(frozen=True)
class TokenDigest:
    principal: str
    sha256: bytes
    scopes: frozenset[str] = DEFAULT_SCOPES


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_token_digests(env: Mapping[str, str], *, stage: str) -> tuple[TokenDigest, ...]:
    """The tokens ``env`` configures, or the development token in ``dev``. Raises ConfigurationError."""
    tokens = _parse_tokens(env.get("API_TOKENS", ""), hashed=False)
    tokens += _parse_tokens(env.get("API_TOKEN_SHA256", ""), hashed=True)
    if not tokens and stage == "dev":
        tokens = [TokenDigest(DEVELOPMENT_PRINCIPAL, token_sha256(DEVELOPMENT_TOKEN), ALL_SCOPES)]
    return tuple(tokens)


def is_development_token(digest: TokenDigest) -> bool:
    return digest.sha256 == token_sha256(DEVELOPMENT_TOKEN)


def _parse_tokens(raw: str, *, hashed: bool) -> list[TokenDigest]:
    """Parse ``principal:secret`` or ``principal[scope scope]:secret`` entries separated by commas.

    A bare secret gets a principal derived from its digest, so logs and audit
    records can tell tokens apart without ever showing one. An entry without
    scopes may read and write patients.
    """
    digests = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        principal, sep, secret = entry.rpartition(":")
        if not sep:
            secret = entry
        principal, scopes = _principal_and_scopes(principal)
        try:
            digest = bytes.fromhex(secret) if hashed else token_sha256(secret)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ConfigurationError("API_TOKEN_SHA256 entries must be 64 hex characters")
        digests.append(TokenDigest(principal or f"token-{digest.hex()[:8]}", digest, scopes))
    return digests


def _principal_and_scopes(prefix: str) -> tuple[str, frozenset[str]]:
    if "[" not in prefix and "]" not in prefix:
        return prefix, DEFAULT_SCOPES
    principal, _, listed = prefix.removesuffix("]").partition("[")
    scopes = frozenset(listed.split())
    well_formed = prefix.endswith("]") and not any(c in principal + listed for c in "[]")
    if not well_formed or not scopes or not scopes <= ALL_SCOPES:
        raise ConfigurationError(
            f"token scopes are written principal[scope scope]:token, with scopes among {sorted(ALL_SCOPES)}"
        )
    return principal, scopes
