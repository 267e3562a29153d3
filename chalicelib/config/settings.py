"""Configuration: every setting the API and the worker read, read once from the environment.

Fail closed: APP_STAGE must name a stage (``dev`` or ``prod``, exactly).
Only the ``dev`` stage outside Lambda gets the development defaults (SQLite
under ``.data/``, the published development token). Inside Lambda
(``AWS_LAMBDA_FUNCTION_NAME`` set), whatever the stage, neither exists; the
``prod`` stage also refuses SQLite and a missing Redis URL, also when they come
from AWS secrets (``chalicelib.config.secrets``).

One module, over 300 lines, on purpose: the slices (``AuthSettings``, ``PatientSettings``,
``RateLimitSettings``…) and their refusals are read together, so that every fail-closed rule of a
stage stands in one place. Only ``chalicelib.bootstrap`` calls ``load_settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from chalicelib.config.environment import (
    ConfigurationError,
    checks_tokens,
    hands_off_notifications,
    number_setting,
    serves_requests,
)
from chalicelib.config.notifications import NotificationSettings, load_notification_settings
from chalicelib.config.provided import BrokerSettings, DatabaseSettings
from chalicelib.config.secrets import SECRET_REFERENCES, SecretUnavailable, resolve_secret_references
from chalicelib.config.token_secret import TokenSecret
from chalicelib.config.tokens import (
    TokenDigest,
    is_development_token,
    load_token_digests,
    parse_token_entries,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# RFC 7518 (3.2): an HS256 key of at least the hash's size.
MIN_HS256_SECRET_BYTES = 32
# "queue": a small pool per process (behind RDS Proxy: one connection, reused);
# "null": a connection per unit of work, so a frozen Lambda container holds none. The first is the default.
DB_POOL_KINDS = ("queue", "null")
# How a read's audit row commits on PostgreSQL; the first is the default.
AUDIT_READ_COMMITS = ("async", "durable")
# The stages .chalice/config.json defines; APP_STAGE must name one of them, exactly.
STAGES = ("dev", "prod")
DEFAULT_TOKEN_CACHE_SECONDS = 60
# The handler Lambda runs for the authorizer's function (app.py's attribute), as Lambda sets it in _HANDLER.
AUTHORIZER_HANDLER = "app.authorize_bearer_token"
# A JWT principal is jwt:<issuer>:<sub> in a 255-character column; sub is at most 128.
MAX_JWT_ISSUER_LENGTH = 120
# In the data dir: the dev stage's own key of the Idempotency-Key request digests.
IDEMPOTENCY_KEY_SECRET_FILE = "idempotency-key-secret"  # noqa: S105 - a file name


class PatientSettings(NamedTuple):
    """What the patient service needs besides its input: the region of phone numbers written without
    a country code, how long a change's notification may wait for its hand-off before the relay
    takes it, and the key of the Idempotency-Key request digests."""

    phone_default_region: str
    relay_delay: float
    idempotency_key_secret: bytes


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


@dataclass(frozen=True)
class AuthSettings:
    """What the authorizer reads: static token digests and JWT settings, nothing of the database or Redis."""

    # The digests read at start; the authorizer asks ``current_token_digests()``.
    token_digests: tuple[TokenDigest, ...]
    # API_TOKENS_SECRET_ID: the secret re-read on a TTL, so a removed token stops working.
    token_secret: TokenSecret | None = None
    jwt: JwtSettings | None = None

    def current_token_digests(self) -> tuple[TokenDigest, ...]:
        """The static tokens valid now: from the secret when one is named, read again after its TTL."""
        if self.token_secret is None:
            return self.token_digests
        return self.token_secret.digests()


@dataclass(frozen=True)
class Settings:
    stage: str
    database_url: str
    # The static tokens and JWT settings, as the authorizer's own function reads them alone.
    auth: AuthSettings
    in_lambda: bool = False
    # False in a scheduled function: no token read, none needed (``serves_requests``).
    serves_requests: bool = True
    # False where the authorizer's function checked the token first (``checks_tokens``): no token read.
    checks_tokens: bool = True
    # False in the purge's function: it needs no broker (``hands_off_notifications``).
    needs_broker: bool = True
    # No DATABASE_URL: the SQLite file under TELEHEALTH_DATA_DIR (``.data/``).
    uses_development_database: bool = False
    redis_url: str | None = None
    sqlite_busy_timeout_ms: int = 5000
    db_pool: str = "queue"
    db_pool_size: int = 2
    db_max_overflow: int = 8
    # AUDIT_READ_COMMIT: "async", a read's audit row commits without waiting for the WAL flush
    # (PostgreSQL only; lost only if the database server crashes within ~0.6 s), or "durable".
    audit_read_commit: str = "async"
    phone_default_region: str = "US"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    # IDEMPOTENCY_KEY_SECRET (prod: from IDEMPOTENCY_KEY_SECRET_ID). None on a laptop without one:
    # the key is then made in the data dir on first use (``idempotency_key``). Empty where no request
    # is served.
    idempotency_key_secret: bytes | None = field(default=b"", repr=False)
    # TELEHEALTH_DATA_DIR (default .data/): the development database, a laptop's keys, the stack's files.
    data_dir: Path = PROJECT_ROOT / ".data"
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def durable_read_audit(self) -> bool:
        """Whether a read's audit row waits for the WAL flush like a change's (AUDIT_READ_COMMIT)."""
        return self.audit_read_commit == "durable"

    @property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings(
            self.database_url,
            self.sqlite_busy_timeout_ms,
            self.db_pool,
            self.db_pool_size,
            self.db_max_overflow,
        )

    @property
    def broker(self) -> BrokerSettings:
        return BrokerSettings(self.redis_url, self.notifications)

    def idempotency_key(self) -> bytes:
        """The key of the Idempotency-Key digests; on a laptop without one, the data dir's own, made
        on first use (never at start: starting writes nothing into the data dir)."""
        if self.idempotency_key_secret is not None:
            return self.idempotency_key_secret
        from chalicelib.config.local_secret import development_secret

        return development_secret(self.data_dir, IDEMPOTENCY_KEY_SECRET_FILE)


def _data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("TELEHEALTH_DATA_DIR", PROJECT_ROOT / ".data"))


def _default_database_url(env: Mapping[str, str]) -> str:
    return f"sqlite:///{_data_dir(env) / 'telehealth.db'}"


def _idempotency_key_secret(env: Mapping[str, str], *, serves_requests: bool, local: bool) -> bytes | None:
    configured = env.get("IDEMPOTENCY_KEY_SECRET", "")
    if configured:
        if len(configured.encode()) < MIN_HS256_SECRET_BYTES:
            raise ConfigurationError(
                f"IDEMPOTENCY_KEY_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes"
            )
        return configured.encode()
    if not serves_requests:
        return b""
    if local:  # made in the data dir on first use (Settings.idempotency_key)
        return None
    raise ConfigurationError(
        "IDEMPOTENCY_KEY_SECRET (or IDEMPOTENCY_KEY_SECRET_ID) is required outside the dev stage on a laptop"
    )


def normalize_database_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """``env[name]`` in lower case, one of ``choices``; the first when unset or blank."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env``, after reading the AWS secrets it names. Raises ConfigurationError."""
    requests = serves_requests(env)
    tokens = checks_tokens(env)
    references = [name for name in SECRET_REFERENCES if tokens or name != "API_TOKENS_SECRET_ID"]
    try:
        env = resolve_secret_references(env, only=references)
    except (ValueError, SecretUnavailable) as error:
        raise ConfigurationError(str(error)) from None
    stage = _stage(env)
    in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    # The dev stage outside Lambda: the published token, the SQLite file and a key made on the spot.
    on_a_laptop = stage == "dev" and not in_lambda
    token_digests = load_token_digests(env, development_token=on_a_laptop) if tokens else ()
    settings = Settings(
        stage=stage,
        in_lambda=in_lambda,
        serves_requests=requests,
        needs_broker=hands_off_notifications(env),
        database_url=normalize_database_url(env.get("DATABASE_URL") or _default_database_url(env)),
        uses_development_database=not env.get("DATABASE_URL"),
        data_dir=_data_dir(env),
        auth=AuthSettings(
            token_digests, _token_secret(env, token_digests) if tokens else None, _jwt_settings(env)
        ),
        checks_tokens=tokens,
        redis_url=env.get("REDIS_URL") or None,
        phone_default_region=env.get("PHONE_DEFAULT_REGION", "US"),
        max_body_bytes=number_setting(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, minimum=1),
        rate_limit=_rate_limit_settings(env),
        db_pool=_choice(env, "DB_POOL", DB_POOL_KINDS),
        # SQLAlchemy reads a pool size of 0 as "no limit".
        db_pool_size=number_setting(env, "DB_POOL_SIZE", 2, int, minimum=1),
        db_max_overflow=number_setting(env, "DB_MAX_OVERFLOW", 8, int),
        audit_read_commit=_choice(env, "AUDIT_READ_COMMIT", AUDIT_READ_COMMITS),
        notifications=load_notification_settings(env),
    )
    _refuse_unsafe_production(settings)
    # Last: a missing key is named only once the rest is known to be sound.
    secret = _idempotency_key_secret(env, serves_requests=requests, local=on_a_laptop)
    return replace(settings, idempotency_key_secret=secret)


def load_auth_settings(env: Mapping[str, str]) -> AuthSettings:
    """The authorizer's settings from ``env``, reading the token secret only. Raises ConfigurationError."""
    try:
        env = resolve_secret_references(env, only=("API_TOKENS_SECRET_ID",))
    except (ValueError, SecretUnavailable) as error:
        raise ConfigurationError(str(error)) from None
    stage = _stage(env)
    in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    token_digests = load_token_digests(env, development_token=stage == "dev" and not in_lambda)
    auth = AuthSettings(token_digests, _token_secret(env, token_digests), _jwt_settings(env))
    if stage == "prod" or in_lambda:
        _refuse_unsafe_tokens(auth, "prod stage" if stage == "prod" else "in Lambda, every stage")
    return auth


def _stage(env: Mapping[str, str]) -> str:
    stage = env.get("APP_STAGE")
    if stage not in STAGES:
        found = "is not set" if not stage else "names no stage"
        raise ConfigurationError(f"APP_STAGE {found}: it must be one of {', '.join(STAGES)} (exactly)")
    return stage


def _token_secret(env: Mapping[str, str], token_digests: tuple[TokenDigest, ...]) -> TokenSecret | None:
    secret_id = env.get("API_TOKENS_SECRET_ID")
    if not secret_id:
        return None
    seconds = number_setting(env, "TOKEN_CACHE_SECONDS", DEFAULT_TOKEN_CACHE_SECONDS, int, maximum=3600)
    return TokenSecret(
        secret_id,
        cache_seconds=seconds,
        # API_TOKENS, when set beside the secret, stay as they are: the environment cannot change.
        fixed=tuple(parse_token_entries(env.get("API_TOKENS", ""), variable="API_TOKENS")),
        first_read=token_digests,
    )


def _rate_limit_settings(env: Mapping[str, str]) -> RateLimitSettings:
    per_minute = number_setting(env, "RATE_LIMIT_PER_MINUTE", 0, int)
    return RateLimitSettings(
        per_minute=per_minute,
        # Without a burst, a fresh client may spend a whole minute's allowance at once.
        burst=number_setting(env, "RATE_LIMIT_BURST", per_minute, int, minimum=1 if per_minute else 0),
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
    if len(issuer) > MAX_JWT_ISSUER_LENGTH or not issuer.isprintable():
        raise ConfigurationError(f"JWT_ISSUER must be at most {MAX_JWT_ISSUER_LENGTH} printable characters")
    if hs256_secret and len(hs256_secret.encode()) < MIN_HS256_SECRET_BYTES:
        raise ConfigurationError(f"JWT_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes")
    return JwtSettings(issuer, audience, hs256_secret, rs256_public_key)


def _refuse_unsafe_production(settings: Settings) -> None:
    if settings.stage == "prod":
        if settings.notifications.failure_rate:
            raise ConfigurationError(
                "prod stage refuses NOTIFY_FAILURE_RATE: real notifications never fail on purpose"
            )
        if settings.is_sqlite:
            raise ConfigurationError("prod stage needs DATABASE_URL for PostgreSQL, not SQLite")
        if not settings.redis_url and settings.needs_broker:
            raise ConfigurationError(
                "prod stage needs REDIS_URL (or REDIS_URL_PARAMETER): rate limits, notifications"
            )
    if settings.stage == "prod" or settings.in_lambda:
        where = "prod stage" if settings.stage == "prod" else "in Lambda, every stage"
        if settings.uses_development_database:
            raise ConfigurationError(
                f"{where} needs DATABASE_URL: the development SQLite file exists only locally"
            )
        if settings.checks_tokens:
            _refuse_unsafe_tokens(settings.auth, where)


def _refuse_unsafe_tokens(auth: AuthSettings, where: str) -> None:
    if not auth.token_digests and auth.jwt is None:
        raise ConfigurationError(f"{where} needs API_TOKENS, API_TOKEN_SHA256 or JWT settings")
    if any(is_development_token(t) for t in auth.token_digests):
        raise ConfigurationError(f"{where} refuses the development token")
