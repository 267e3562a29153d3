"""Static token digests kept in Secrets Manager, read again after a TTL so a removed token stops working.

Read lazily on the authorizer's path: the first request after ``cache_seconds``
reads the secret again (one GetSecretValue per container per TTL). When a
read fails (AWS unreachable, access denied, a malformed entry, the development
token), the last good set stays in use, a warning is logged, and the read is
tried again after the TTL; once the last good read is older than
MAX_STALE_SECONDS, no digest from the secret is accepted until a read succeeds
(fail closed: an outage may delay a revocation, never undo it for long).
"""

from __future__ import annotations

import logging
import threading
import time

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.secrets import SecretUnavailable, read_reference
from chalicelib.config.tokens import TokenDigest, is_development_token, parse_token_entries

MAX_STALE_SECONDS = 15 * 60
# Seconds, monotonic; the tests drive it instead of sleeping.
clock = time.monotonic

logger = logging.getLogger("telehealth.auth")


class TokenSecret:
    """The digests of API_TOKENS_SECRET_ID (plus the fixed API_TOKENS), refreshed every ``cache_seconds``."""

    def __init__(
        self,
        secret_id: str,
        *,
        cache_seconds: int,
        fixed: tuple[TokenDigest, ...],
        first_read: tuple[TokenDigest, ...],
    ) -> None:
        self.secret_id = secret_id
        self.cache_seconds = cache_seconds
        self._fixed = fixed
        self._digests = first_read
        self._read_at = self._tried_at = clock()
        self._lock = threading.Lock()

    def digests(self) -> tuple[TokenDigest, ...]:
        now = clock()
        if now - self._tried_at >= self.cache_seconds:
            with self._lock:  # one read per container, not one per waiting thread
                if now - self._tried_at >= self.cache_seconds:
                    self._refresh(now)
        if now - self._read_at > MAX_STALE_SECONDS:
            return self._fixed
        return self._digests

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            raw = read_reference("API_TOKENS_SECRET_ID", self.secret_id)
            read = parse_token_entries(raw, variable="API_TOKEN_SHA256")
            if any(is_development_token(digest) for digest in read):
                raise ConfigurationError("the secret holds the development token")
        except (SecretUnavailable, ConfigurationError) as error:
            # The error names the secret and the entry's position, never a digest.
            logger.warning("token digests not re-read, the last good set stays: %s", error)
            return
        self._digests = self._fixed + tuple(read)
        self._read_at = now
