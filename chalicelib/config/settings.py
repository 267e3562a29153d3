"""Configuration: every setting the API and the worker read, read once from the environment.

Development defaults are safe to run on a laptop (SQLite under ``.data/``,
the published development token). The ``prod`` stage refuses to start with
either of them, also when they come from AWS secrets (``chalicelib.config.secrets``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from chalicelib.access.scopes import ALL_SCOPES, DEFAULT_SCOPES
from chalicelib.config.secrets import SecretUnavailable, resolve_secret_references

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT_TOKEN = "secret-token-123"  # noqa: S105 - the seed's documented token, dev stage only
DEVELOPMENT_PRINCIPAL = "development"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# RFC 7518 (3.2): an HS256 key of at least the hash's size.
MIN_HS256_SECRET_BYTES = 32
# "queue": a small pool per process (behind RDS Proxy: one connection, reused);
# "null": a connection per unit of work, so a frozen Lambda container holds none.
DB_POOL_KINDS = ("queue", "null")


class ConfigurationError(RuntimeError):
    """The environment describes a deployment that must not start."""


@dataclass(frozen=True)
class TokenDigest:
    principal: str
    sha256: bytes
    scopes: frozenset[str] = DEFAULT_SCOPES


@dataclass(frozen=True)
class RateLimitSettings:
    """A token bucket per principal in Redis: refilled at ``per_minute``, holding at most ``burst``."""

    per_minute: int = 0  # 0: no limit
    burst: int = 0
    key_prefix: str = "telehealth:rate-limit:"

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0


@dataclass(frozen=True)
class JwtSettings:
    """Signed bearer JWTs, accepted beside the static tokens: HS256 with a shared secret, RS256 with a key."""

    issuer: str
    audience: str
    hs256_secret: str | None = None
    rs256_public_key: str | None = None


NOTIFICATION_PROVIDERS = ("log", "ses", "sns")


@dataclass(frozen=True)
class NotificationSettings:
    """How notifications travel: broker timeouts, retries, the relay, the delivery providers."""

    # Chance that a delivery attempt fails on purpose before delivering (the seed's resilience drill).
    failure_rate: float = 0.25
    providers: tuple[str, ...] = ("log",)
    max_retries: int = 5
    # Seconds; retry n+1 waits between half and all of retry_backoff * 2**n (capped at retry_backoff_max).
    retry_backoff: int = 2
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
    # No DATABASE_URL: the SQLite file under TELEHEALTH_DATA_DIR (``.data/``).
    uses_development_database: bool = False
    redis_url: str | None = None
    sqlite_busy_timeout_ms: int = 5000
    db_pool: str = "queue"
    db_pool_size: int = 2
    db_max_overflow: int = 8
    max_per_page: int = 100
    default_per_page: int = 20
    phone_default_region: str = "US"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    jwt: JwtSettings | None = None
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


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


def _default_database_url(env: Mapping[str, str]) -> str:
    data_dir = Path(env.get("TELEHEALTH_DATA_DIR", PROJECT_ROOT / ".data"))
    return f"sqlite:///{data_dir / 'telehealth.db'}"


def normalize_database_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _pool_kind(env: Mapping[str, str]) -> str:
    kind = env.get("DB_POOL", "queue").strip().lower() or "queue"
    if kind not in DB_POOL_KINDS:
        raise ConfigurationError(f"DB_POOL must be one of {', '.join(DB_POOL_KINDS)}, not {kind!r}")
    return kind


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env``, after reading the AWS secrets it names. Raises ConfigurationError."""
    try:
        env = resolve_secret_references(env)
    except (ValueError, SecretUnavailable) as error:
        raise ConfigurationError(str(error)) from None
    stage = env.get("APP_STAGE", "dev")
    tokens = _parse_tokens(env.get("API_TOKENS", ""), hashed=False)
    tokens += _parse_tokens(env.get("API_TOKEN_SHA256", ""), hashed=True)
    if not tokens and stage == "dev":
        tokens = [TokenDigest(DEVELOPMENT_PRINCIPAL, token_sha256(DEVELOPMENT_TOKEN), ALL_SCOPES)]
    settings = Settings(
        stage=stage,
        database_url=normalize_database_url(env.get("DATABASE_URL") or _default_database_url(env)),
        uses_development_database=not env.get("DATABASE_URL"),
        token_digests=tuple(tokens),
        redis_url=env.get("REDIS_URL") or None,
        phone_default_region=env.get("PHONE_DEFAULT_REGION", "US"),
        max_body_bytes=_number(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, minimum=1),
        rate_limit=_rate_limit_settings(env),
        jwt=_jwt_settings(env),
        db_pool=_pool_kind(env),
        db_pool_size=_number(env, "DB_POOL_SIZE", 2, int, minimum=1),  # SQLAlchemy reads 0 as "no limit"
        db_max_overflow=_number(env, "DB_MAX_OVERFLOW", 8, int),
        notifications=load_notification_settings(env),
    )
    _refuse_unsafe_production(settings)
    return settings


def _rate_limit_settings(env: Mapping[str, str]) -> RateLimitSettings:
    per_minute = _number(env, "RATE_LIMIT_PER_MINUTE", 0, int)
    return RateLimitSettings(
        per_minute=per_minute,
        # Without a burst, a fresh client may spend a whole minute's allowance at once.
        burst=_number(env, "RATE_LIMIT_BURST", per_minute, int, minimum=1 if per_minute else 0),
        key_prefix=env.get("RATE_LIMIT_KEY_PREFIX") or RateLimitSettings.key_prefix,
    )


def _jwt_settings(env: Mapping[str, str]) -> JwtSettings | None:
    hs256_secret = env.get("JWT_HS256_SECRET") or None
    rs256_public_key = env.get("JWT_RS256_PUBLIC_KEY") or None
    issuer, audience = env.get("JWT_ISSUER", ""), env.get("JWT_AUDIENCE", "")
    if not (hs256_secret or rs256_public_key):
        if issuer or audience:
            raise ConfigurationError("JWT_ISSUER needs JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY")
        return None
    if not (issuer and audience):
        raise ConfigurationError("JWTs need JWT_ISSUER and JWT_AUDIENCE, both checked on every token")
    if hs256_secret and len(hs256_secret.encode()) < MIN_HS256_SECRET_BYTES:
        raise ConfigurationError(f"JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes")
    return JwtSettings(issuer, audience, hs256_secret, rs256_public_key)


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
    upper = "" if maximum is None else f" and at most {maximum}"
    wanted = f"{name} must be {'a whole number' if kind is int else 'a number'} of at least {minimum}{upper}"
    text = raw.strip()
    # int() would also take other scripts' digits and numbers of any length.
    if not text.isascii() or len(text) > 18:
        raise ConfigurationError(wanted)
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(wanted) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigurationError(wanted)
    return value


def _refuse_unsafe_production(settings: Settings) -> None:
    if settings.stage != "prod":
        return
    if settings.is_sqlite:
        raise ConfigurationError("prod stage needs DATABASE_URL for PostgreSQL, not SQLite")
    if not settings.token_digests and settings.jwt is None:
        raise ConfigurationError("prod stage needs API_TOKENS, API_TOKEN_SHA256 or JWT settings")
    development_digest = token_sha256(DEVELOPMENT_TOKEN)
    if any(t.sha256 == development_digest for t in settings.token_digests):
        raise ConfigurationError("prod stage refuses the development token")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "console")


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    # The Lambda runtime already has a handler on the root logger, writing to the function's log stream.
    in_lambda: bool = False
    # "json" for machines (files, pipes, honcho, Lambda); "console" is one readable line for a person.
    format: str = "json"

    @property
    def console(self) -> bool:
        return self.format == "console"


def load_log_settings(env: Mapping[str, str], *, stdout_is_terminal: bool = False) -> LogSettings:
    """Read apart from ``Settings``: a cold start that fails on its settings still logs why, as JSON.

    LOG_FORMAT defaults to ``console`` on a terminal and ``json`` anywhere else.
    """
    level = (env.get("LOG_LEVEL") or LogSettings.level).strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    log_format = (env.get("LOG_FORMAT") or ("console" if stdout_is_terminal else "json")).strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    return LogSettings(level=level, in_lambda=bool(env.get("AWS_LAMBDA_FUNCTION_NAME")), format=log_format)


def get_log_settings() -> LogSettings:
    return load_log_settings(os.environ, stdout_is_terminal=sys.stdout.isatty())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (in Lambda: once per cold start, secrets included)."""
    return load_settings(os.environ)


def check_settings_at_startup() -> None:
    """Fail a cold start with unsafe settings before any request is served.

    Chalice's CLI also imports app.py for commands that only read its routes
    (``package``, ``deploy``, ``delete``): those must neither fetch production
    secrets from AWS nor need them, so under them the check is left to the
    deployed functions' cold start. ``chalice local`` serves, and checks.
    """
    command = _chalice_cli_command()
    if command is None or command in SERVING_COMMANDS:
        get_settings()


# Chalice CLI commands that import app.py to serve it (others read its routes).
SERVING_COMMANDS = frozenset({"local"})


def serving_with_chalice_local() -> bool:
    """True while ``chalice local`` (or ``python -m scripts.local_api``) loads the app to serve it."""
    return _chalice_cli_command() in SERVING_COMMANDS


def _chalice_cli_command() -> str | None:
    if os.environ.get("AWS_CHALICE_CLI_MODE") != "true":  # set by chalice's CLI, never in Lambda
        return None
    import click  # loaded already: chalice's CLI is built on it

    context = click.get_current_context(silent=True)
    return context.command.name if context is not None else None
