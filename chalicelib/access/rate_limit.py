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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.config.process_cache import on_forget
from chalicelib.config.settings import RateLimitSettings
from chalicelib.errors import RateLimited
from chalicelib.storage.models import utc_now

logger = logging.getLogger("telehealth.rate_limit")

# Refusal counters live this long unsettled (the relay settles them every minute).
REFUSAL_COUNT_SECONDS = 86_400
REFUSAL_WINDOW_FORMAT = "%Y%m%dT%H%M"
# A request waits at most about this long on Redis before it goes through unlimited.
REDIS_TIMEOUT_SECONDS = 0.15
BACKOFF_SECONDS = 5.0

# KEYS[1]: the bucket; KEYS[2]: the principal's refusals in this UTC minute; KEYS[3]: the set of
# refusal counters not yet settled into the audit trail. ARGV: tokens added per millisecond, capacity,
# the counters' lifetime in seconds.
# Returns {1, 0, 0} when a token was taken, else {0, milliseconds until one is available, how many
# refusals the principal has had in this minute, this one included}.
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
  local refused = redis.call('INCR', KEYS[2])
  if refused == 1 then
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
    redis.call('SADD', KEYS[3], KEYS[2])
  end
  return {0, wait_ms, refused}
end
return {1, 0, 0}
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
    wait_ms, refused = _take_token(redis_url, limit, principal)
    if wait_ms:
        raise RateLimited(max(1, math.ceil(wait_ms / 1000)), first_in_window=refused == 1)


def _take_token(redis_url: str, limit: RateLimitSettings, principal: str) -> tuple[int, int]:
    """Milliseconds until the bucket has a token (0: taken now, or Redis could not say), and when
    refused, the principal's refusals in this minute (counted in the same script call)."""
    state = _state_for(redis_url)
    if time.monotonic() < state.unavailable_until:
        return 0, 0
    from redis.exceptions import RedisError

    keys = [limit.key_prefix + principal, _refusals_key(limit, principal, utc_now()), _unsettled(limit)]
    try:
        script = state.script or _load_script(state, redis_url)
        _allowed, wait_ms, refused = script(
            keys=keys, args=[limit.per_minute / 60_000, limit.burst, REFUSAL_COUNT_SECONDS]
        )
    except (RedisError, OSError) as error:
        state.unavailable_until = time.monotonic() + BACKOFF_SECONDS
        # The class only: a message can quote the server's address, never the principal or token.
        logger.warning(
            "rate limiter unavailable (%s): requests are not limited for %.0f s",
            type(error).__name__,
            BACKOFF_SECONDS,
        )
        return 0, 0
    return int(wait_ms), int(refused)


@dataclass(frozen=True)
class RefusalCount:
    principal: str
    window_start: datetime
    refused: int


def take_closed_refusal_counts(
    redis_url: str, limit: RateLimitSettings, now: datetime, settle: Callable[[list[RefusalCount]], None]
) -> int:
    """Hand ``settle`` the exact refusal count of every principal and minute that has ended, and
    forget those counters once it returned (if it raises, they stay for the next run). Returns how
    many counts were settled. Safe to run twice at once: ``settle`` sets counts, it never adds."""
    import redis

    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=1, socket_timeout=5, decode_responses=True
    )
    try:
        current = _window_of(now)
        closed = [
            key
            for key in sorted(client.smembers(_unsettled(limit)))
            if _parse_refusals_key(limit, str(key)).window_start < current
        ]
        if not closed:
            return 0
        counts = [
            replace(_parse_refusals_key(limit, str(key)), refused=int(value))
            for key, value in zip(closed, client.mget(closed), strict=True)
            if value is not None
        ]
        settle(counts)
        client.delete(*closed)
        client.srem(_unsettled(limit), *closed)
        return len(counts)
    finally:
        client.close()


def _window_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _refusals_key(limit: RateLimitSettings, principal: str, at: datetime) -> str:
    return f"{limit.key_prefix}refused:{_window_of(at).strftime(REFUSAL_WINDOW_FORMAT)}:{principal}"


def _parse_refusals_key(limit: RateLimitSettings, key: str) -> RefusalCount:
    window, _, principal = key.removeprefix(f"{limit.key_prefix}refused:").partition(":")
    return RefusalCount(principal, datetime.strptime(window, REFUSAL_WINDOW_FORMAT), 0)


def _unsettled(limit: RateLimitSettings) -> str:
    return f"{limit.key_prefix}refused:unsettled"


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
