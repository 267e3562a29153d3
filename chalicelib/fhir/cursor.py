"""The ``next`` link's continuation: a search's state sealed by the server, opaque to everyone else.

A search by name, email or phone carries patient data, which never goes in a URL; its next page
must still be reachable by a GET link (FHIR's paging). So the link carries the search's state
(criteria, position, page size) encrypted and authenticated with AES-GCM under a key only the
server holds (derived from its idempotency-key secret), bound to the token's principal (another
principal cannot use it) and valid for ``LIFETIME_SECONDS``. Nothing in it can be read or changed
without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

from chalicelib.errors import UnacceptableValue

CURSOR = "_cursor"
LIFETIME_SECONDS = 3600
_KEY_LABEL = b"telehealth-api fhir search continuation v1"
_NONCE_BYTES = 12
# A sealed search is small; anything longer was not written by this server.
MAX_CURSOR_LENGTH = 2048


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def seal(state: dict[str, Any], principal: str, secret: bytes) -> str:
    """``state`` (JSON values) as an opaque, URL-safe continuation for ``principal``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only searches pay for it

    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps({**state, "exp": int(time.time()) + LIFETIME_SECONDS}, separators=(",", ":"))
    sealed = AESGCM(_key(secret)).encrypt(nonce, plain.encode(), principal.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(token: str, principal: str, secret: bytes) -> dict[str, Any]:
    """The state ``seal`` sealed for ``principal``. Raises UnacceptableValue (a 422: the document
    cannot tell a continuation's validity) for one this server did not write, for another
    principal, or that expired."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    refused = UnacceptableValue("This continuation is not valid (any more): search again", field=CURSOR)
    if len(token) > MAX_CURSOR_LENGTH or not token.isascii():
        raise refused
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESGCM(_key(secret)).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], principal.encode())
    except (ValueError, InvalidTag):
        raise refused from None
    state = json.loads(plain)
    if not isinstance(state, dict) or state.get("exp", 0) < time.time():
        raise refused
    return state
