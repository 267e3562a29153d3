"""Static bearer tokens: API_TOKENS and API_TOKEN_SHA256, kept as SHA-256 digests only.

Entries read ``secret``, ``principal:secret`` or ``principal[scope scope]:secret``,
separated by commas. An entry splits one way only: a principal is letters,
digits and ``. _ @ -``; a secret holds no ``:``, ``,`` or whitespace. Anything
else is refused, naming the entry's position, never its text. Only the ``dev``
stage outside Lambda, without any token, falls back to the seed's published
development token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config.environment import ConfigurationError
from chalicelib.scopes import ALL_SCOPES, DEFAULT_SCOPES

# RFC 6750 section 2.1: what a bearer token may be made of.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
DEVELOPMENT_TOKEN = "secret-token-123"  # noqa: S105 - the seed's documented token, dev stage only
DEVELOPMENT_PRINCIPAL = "development"
# Principals reach logs, rate-limit keys and the audit trail: a safe, short alphabet.
PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class TokenDigest:
    principal: str
    sha256: bytes
    scopes: frozenset[str] = DEFAULT_SCOPES


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_token_digests(env: Mapping[str, str], *, development_token: bool) -> tuple[TokenDigest, ...]:
    """The tokens ``env`` configures; without any, the development token if allowed.

    Raises ConfigurationError.
    """
    tokens = parse_token_entries(env.get("API_TOKENS", ""), variable="API_TOKENS")
    tokens += parse_token_entries(env.get("API_TOKEN_SHA256", ""), variable="API_TOKEN_SHA256")
    if not tokens and development_token:
        tokens = [TokenDigest(DEVELOPMENT_PRINCIPAL, token_sha256(DEVELOPMENT_TOKEN), ALL_SCOPES)]
    return tuple(tokens)


def is_development_token(digest: TokenDigest) -> bool:
    return digest.sha256 == token_sha256(DEVELOPMENT_TOKEN)


def parse_token_entries(raw: str, *, variable: str) -> list[TokenDigest]:
    """Parse ``variable``'s comma-separated entries (API_TOKEN_SHA256: digests in hex).

    A bare secret gets a principal derived from its digest, so logs and audit
    records can tell tokens apart without ever showing one. An entry without
    scopes may read and write patients. Raises ConfigurationError naming the
    entry's position (1-based), never its text.
    """
    hashed = variable == "API_TOKEN_SHA256"
    digests = []
    for position, entry in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not entry:
            continue
        prefix, secret = _split_entry(entry)
        if prefix is not None and not prefix.strip():
            raise ConfigurationError(f"{variable} entry {position}: empty principal before ':'")
        principal, scopes = _principal_and_scopes(prefix or "")
        if ":" in secret or not secret or any(c.isspace() for c in secret):
            raise ConfigurationError(
                f"{variable} entry {position}: a token holds no ':' or whitespace (entry: principal:token)"
            )
        if not hashed and not B64TOKEN.fullmatch(secret):
            raise ConfigurationError(
                f"{variable} entry {position}: a token is made of letters, digits and - . _ ~ + /, then any"
                " '=' (RFC 6750's b64token): no client could send another"
            )
        if principal and not PRINCIPAL_PATTERN.fullmatch(principal):
            raise ConfigurationError(
                f"{variable} entry {position}: a principal is 1-64 letters, digits or . _ @ -, starting with"
                " a letter or digit"
            )
        try:
            digest = bytes.fromhex(secret) if hashed else token_sha256(secret)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ConfigurationError(
                f"{variable} entry {position}: API_TOKEN_SHA256 entries must be 64 hex characters"
            )
        digests.append(TokenDigest(principal or f"token-{digest.hex()[:8]}", digest, scopes))
    return digests


def _split_entry(entry: str) -> tuple[str | None, str]:
    """(principal part or None for a bare secret, secret): the first ':' after any scope list."""
    closing = entry.find("]")
    colon = entry.find(":", closing + 1 if closing >= 0 else 0)
    if colon < 0:
        return None, entry
    return entry[:colon], entry[colon + 1 :]


def _principal_and_scopes(prefix: str) -> tuple[str, frozenset[str]]:
    if "[" not in prefix and "]" not in prefix:
        return prefix.strip(), DEFAULT_SCOPES
    principal, _, listed = prefix.removesuffix("]").partition("[")
    scopes = frozenset(listed.split())
    well_formed = prefix.endswith("]") and not any(c in principal + listed for c in "[]")
    if not well_formed or not scopes or not scopes <= ALL_SCOPES:
        raise ConfigurationError(
            f"token scopes are written principal[scope scope]:token, with scopes among {sorted(ALL_SCOPES)}"
        )
    return principal.strip(), scopes
