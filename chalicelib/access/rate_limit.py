"""Per-principal rate limit: a token bucket in Redis, read and updated by one Lua script.

One script call per request decides atomically, so every Lambda container and
every thread shares one bucket per principal, on Redis's clock. The limiter
fails open: when Redis is not configured, unreachable or slow, requests go
through and a log line says so (patient care is never blocked by the limiter).
After a failure Redis is left alone for a few seconds, so a dead server costs
one short timeout now and then, not one per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.config.process_cache import on_forget
from chalicelib.config.settings import RateLimitSettings
from chalicelib.errors import RateLimited

logger = logging.getLogger("telehealth.rate_limit")

# A request waits at most about this long on Redis before it goes through unlimited.
REDIS_TIMEOUT_SECONDS = 0.15
BACKOFF_SECONDS = 5.0

# KEYS[1]: the bucket. ARGV: tokens added per millisecond, capacity.
# Returns {1, 0} when a token was taken, {0, milliseconds until one is available} otherwise.
TAKE_FROM_BUCKET_LUA = """
local per_ms = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
if wait_ms > 0 then
  return {0, wait_ms}
end
return {1, 0}
"""


@dataclass
class _RedisState:
    script: Any = None  # a redis Script bound to its client
    unavailable_until: float = 0.0


_states: dict[str, _RedisState] = {}
_lock = threading.Lock()
_warned_unconfigured = False


def enforce_rate_limit(principal: str, limit: RateLimitSettings, redis_url: str | None) -> None:
    """Take one request from ``principal``'s bucket. Raises RateLimited when it is empty.

    Does nothing when the limit is disabled, and lets the request through when
    Redis cannot answer.
    """
    if not limit.enabled:
        return
    if redis_url is None:
        _warn_unconfigured()
        return
    wait_ms = _take_token(redis_url, limit, principal)
    if wait_ms:
        raise RateLimited(max(1, math.ceil(wait_ms / 1000)))


def _take_token(redis_url: str, limit: RateLimitSettings, principal: str) -> int:
    """Milliseconds until the bucket has a token (0: taken now, or Redis could not say)."""
    state = _state_for(redis_url)
    if time.monotonic() < state.unavailable_until:
        return 0
    from redis.exceptions import RedisError

    try:
        script = state.script or _load_script(state, redis_url)
        allowed, wait_ms = script(
            keys=[limit.key_prefix + principal], args=[limit.per_minute / 60_000, limit.burst]
        )
    except (RedisError, OSError) as error:
        state.unavailable_until = time.monotonic() + BACKOFF_SECONDS
        # The class only: a message can quote the server's address, never the principal or token.
        logger.warning(
            "rate limiter unavailable (%s): requests are not limited for %.0f s",
            type(error).__name__,
            BACKOFF_SECONDS,
        )
        return 0
    return 0 if allowed else int(wait_ms)


def _state_for(redis_url: str) -> _RedisState:
    with _lock:
        return _states.setdefault(redis_url, _RedisState())


def _load_script(state: _RedisState, redis_url: str) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),  # one attempt: the request is waiting
    )
    state.script = client.register_script(TAKE_FROM_BUCKET_LUA)
    return state.script


def _warn_unconfigured() -> None:
    global _warned_unconfigured
    if not _warned_unconfigured:
        _warned_unconfigured = True
        logger.warning("RATE_LIMIT_PER_MINUTE is set but REDIS_URL is not: requests are not limited")


def reset_rate_limiter() -> None:
    """Forget every Redis client and back-off (tests, and settings that changed)."""
    global _warned_unconfigured
    with _lock:
        _states.clear()
        _warned_unconfigured = False


on_forget(reset_rate_limiter)
