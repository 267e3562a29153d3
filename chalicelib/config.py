"""Configuration: every setting the API and the worker read, read once from the environment.

Development defaults are safe to run on a laptop (SQLite under ``.data/``,
the published development token). The ``prod`` stage refuses to start with
either of them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_TOKEN = "secret-token-123"  # noqa: S105 - the seed's documented token, dev stage only
DEVELOPMENT_PRINCIPAL = "development"


class ConfigurationError(RuntimeError):
    """The environment describes a deployment that must not start."""


@dataclass(frozen=True)
class TokenDigest:
    principal: str
    sha256: bytes


NOTIFICATION_PROVIDERS = ("log", "ses", "sns")


@dataclass(frozen=True)
class NotificationSettings:
    """How notifications travel: broker timeouts, retries, the relay, the delivery providers."""

    # Chance that a delivery attempt fails on purpose before delivering (the seed's resilience drill).
    failure_rate: float = 0.25
    providers: tuple[str, ...] = ("log",)
    max_retries: int = 5
    retry_backoff: int = 2  # seconds; the n-th retry waits up to retry_backoff * 2**n (full jitter)
    retry_backoff_max: int = 300
    # A notification still pending or queued this long after its last hand-off is handed off again.
    relay_delay: int = 60
    relay_interval: float = 10.0
    # How long a worker's claim on a notification lasts; a claim older than this was abandoned.
    claim_timeout: int = 300
    # Redis redelivers a message not acknowledged within this many seconds (acks_late).
    visibility_timeout: int = 3600
    # Bounds the hand-off in the request path when Redis is unreachable.
    broker_connect_timeout: float = 1.0
    email_sender: str = "notifications@example.com"


@dataclass(frozen=True)
class Settings:
    stage: str
    database_url: str
    token_digests: tuple[TokenDigest, ...]
    redis_url: str | None = None
    sqlite_busy_timeout_ms: int = 5000
    max_per_page: int = 100
    default_per_page: int = 20
    phone_default_region: str = "US"
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _parse_tokens(raw: str, *, hashed: bool) -> list[TokenDigest]:
    """Parse ``principal:secret`` entries separated by commas.

    A bare secret gets a principal derived from its digest, so logs and audit
    records can tell tokens apart without ever showing one.
    """
    digests = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        principal, sep, secret = entry.rpartition(":")
        if not sep:
            secret = entry
        digest = bytes.fromhex(secret) if hashed else token_sha256(secret)
        if len(digest) != 32:
            raise ConfigurationError("API_TOKEN_SHA256 entries must be 64 hex characters")
        digests.append(TokenDigest(principal or f"token-{digest.hex()[:8]}", digest))
    return digests


def _default_database_url(env: Mapping[str, str]) -> str:
    data_dir = Path(env.get("TELEHEALTH_DATA_DIR", PROJECT_ROOT / ".data"))
    return f"sqlite:///{data_dir / 'telehealth.db'}"


def normalize_database_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_settings(env: Mapping[str, str]) -> Settings:
    stage = env.get("APP_STAGE", "dev")
    tokens = _parse_tokens(env.get("API_TOKENS", ""), hashed=False)
    tokens += _parse_tokens(env.get("API_TOKEN_SHA256", ""), hashed=True)
    if not tokens and stage == "dev":
        tokens = [TokenDigest(DEVELOPMENT_PRINCIPAL, token_sha256(DEVELOPMENT_TOKEN))]
    settings = Settings(
        stage=stage,
        database_url=normalize_database_url(env.get("DATABASE_URL") or _default_database_url(env)),
        token_digests=tuple(tokens),
        redis_url=env.get("REDIS_URL") or None,
        phone_default_region=env.get("PHONE_DEFAULT_REGION", "US"),
        notifications=load_notification_settings(env),
    )
    _refuse_unsafe_production(settings)
    return settings


def load_notification_settings(env: Mapping[str, str]) -> NotificationSettings:
    defaults = NotificationSettings()
    providers = tuple(p.strip() for p in env.get("NOTIFY_PROVIDER", "log").split(",") if p.strip())
    unknown = sorted(set(providers) - set(NOTIFICATION_PROVIDERS))
    if unknown or not providers:
        raise ConfigurationError(f"NOTIFY_PROVIDER must list some of {', '.join(NOTIFICATION_PROVIDERS)}")
    settings = NotificationSettings(
        failure_rate=_number(env, "NOTIFY_FAILURE_RATE", defaults.failure_rate, float, maximum=1.0),
        providers=providers,
        max_retries=_number(env, "NOTIFY_MAX_RETRIES", defaults.max_retries, int),
        retry_backoff=_number(env, "NOTIFY_RETRY_BACKOFF", defaults.retry_backoff, int, minimum=1),
        retry_backoff_max=_number(
            env, "NOTIFY_RETRY_BACKOFF_MAX", defaults.retry_backoff_max, int, minimum=1
        ),
        relay_delay=_number(env, "NOTIFY_RELAY_DELAY", defaults.relay_delay, int, minimum=1),
        relay_interval=_number(env, "NOTIFY_RELAY_INTERVAL", defaults.relay_interval, float, minimum=0.1),
        claim_timeout=_number(env, "NOTIFY_CLAIM_TIMEOUT", defaults.claim_timeout, int, minimum=1),
        visibility_timeout=_number(
            env, "REDIS_VISIBILITY_TIMEOUT", defaults.visibility_timeout, int, minimum=1
        ),
        broker_connect_timeout=_number(
            env, "REDIS_CONNECT_TIMEOUT", defaults.broker_connect_timeout, float, minimum=0.01
        ),
        email_sender=env.get("NOTIFY_EMAIL_SENDER", defaults.email_sender),
    )
    # A retry scheduled past the visibility timeout is redelivered by Redis while it still waits.
    if settings.retry_backoff_max * 2 > settings.visibility_timeout:
        raise ConfigurationError("NOTIFY_RETRY_BACKOFF_MAX must be at most half of REDIS_VISIBILITY_TIMEOUT")
    return settings


Number = TypeVar("Number", int, float)


def _number(
    env: Mapping[str, str],
    name: str,
    default: Number,
    kind: type[Number],
    *,
    minimum: float = 0,
    maximum: float | None = None,
) -> Number:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{name} must be {'an integer' if kind is int else 'a number'}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ConfigurationError(f"{name} must be at least {minimum}{upper}")
    return value


def _refuse_unsafe_production(settings: Settings) -> None:
    if settings.stage != "prod":
        return
    if settings.is_sqlite:
        raise ConfigurationError("prod stage needs DATABASE_URL for PostgreSQL, not SQLite")
    if not settings.token_digests:
        raise ConfigurationError("prod stage needs API_TOKENS or API_TOKEN_SHA256")
    development_digest = token_sha256(DEVELOPMENT_TOKEN)
    if any(t.sha256 == development_digest for t in settings.token_digests):
        raise ConfigurationError("prod stage refuses the development token")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings(os.environ)
