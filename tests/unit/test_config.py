"""Settings: safe development defaults, loud refusal of unsafe production ones."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.settings import load_settings
from chalicelib.config.tokens import DEVELOPMENT_PRINCIPAL, token_sha256

PG = "postgresql://clinic@db.internal/telehealth"


def test_dev_defaults_to_sqlite_and_the_development_token() -> None:
    settings = load_settings({})

    assert settings.stage == "dev"
    assert settings.is_sqlite
    assert [t.principal for t in settings.token_digests] == [DEVELOPMENT_PRINCIPAL]
    assert settings.token_digests[0].sha256 == token_sha256("secret-token-123")


def test_postgres_urls_use_psycopg3() -> None:
    assert load_settings({"DATABASE_URL": PG}).database_url.startswith("postgresql+psycopg://")


def test_tokens_accept_principals_and_digests() -> None:
    digest = hashlib.sha256(b"from-digest").hexdigest()

    settings = load_settings({"API_TOKENS": "clinic-a:alpha, beta", "API_TOKEN_SHA256": f"ops:{digest}"})

    principals = [t.principal for t in settings.token_digests]
    assert principals[0] == "clinic-a"
    assert principals[1].startswith("token-") and "beta" not in principals[1]
    assert principals[2] == "ops"
    assert settings.token_digests[2].sha256 == token_sha256("from-digest")


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"APP_STAGE": "prod", "API_TOKENS": "a:strong"}, "SQLite"),
        ({"APP_STAGE": "prod", "DATABASE_URL": PG}, "API_TOKENS"),
        ({"APP_STAGE": "prod", "DATABASE_URL": PG, "API_TOKENS": "secret-token-123"}, "development token"),
        (
            {
                "APP_STAGE": "prod",
                "DATABASE_URL": PG,
                "API_TOKEN_SHA256": token_sha256("secret-token-123").hex(),
            },
            "development token",
        ),
    ],
)
def test_prod_refuses_unsafe_settings(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        load_settings(env)


def test_prod_accepts_postgres_and_real_tokens() -> None:
    settings = load_settings({"APP_STAGE": "prod", "DATABASE_URL": PG, "API_TOKENS": "clinic:long-random"})

    assert settings.stage == "prod"


@pytest.mark.parametrize("bad", ["abcd", "zz" * 32, "ops:" + "0" * 63])
def test_malformed_digest_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"API_TOKEN_SHA256": bad})


def test_tokens_without_scopes_read_and_write_and_the_development_token_holds_all() -> None:
    assert load_settings({"API_TOKENS": "clinic:alpha"}).token_digests[0].scopes == {
        "patients:read",
        "patients:write",
    }
    assert load_settings({}).token_digests[0].scopes == {"patients:read", "patients:write", "audit:read"}


def test_tokens_take_scopes_in_brackets_after_the_principal() -> None:
    digest = hashlib.sha256(b"auditor-token").hexdigest()

    settings = load_settings(
        {
            "API_TOKENS": "front-desk[patients:read]:alpha, ops[patients:read patients:write  audit:read]:b",
            "API_TOKEN_SHA256": f"auditor[audit:read]:{digest}, [patients:read]:{'ab' * 32}",
        }
    )

    by_principal = {t.principal: t for t in settings.token_digests}
    assert by_principal["front-desk"].scopes == {"patients:read"}
    assert by_principal["front-desk"].sha256 == token_sha256("alpha")
    assert by_principal["ops"].sha256 == token_sha256("b")
    assert by_principal["ops"].scopes == {"patients:read", "patients:write", "audit:read"}
    assert by_principal["auditor"].scopes == {"audit:read"}
    assert by_principal["auditor"].sha256 == token_sha256("auditor-token")
    assert by_principal[f"token-{'ab' * 4}"].scopes == {"patients:read"}


@pytest.mark.parametrize(
    "entry",
    ["a[]:t", "a[patients:delete]:t", "a[patients:read:t", "a[b[patients:read]:t", "a patients:read]:t"],
)
def test_unknown_or_malformed_scopes_are_refused(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="scope"):
        load_settings({"API_TOKENS": entry})


def test_rate_limit_is_off_unless_configured_and_bursts_a_minute_by_default() -> None:
    assert not load_settings({}).rate_limit.enabled

    limit = load_settings({"RATE_LIMIT_PER_MINUTE": "120"}).rate_limit

    assert limit.enabled and limit.per_minute == 120 and limit.burst == 120
    assert load_settings({"RATE_LIMIT_PER_MINUTE": "120", "RATE_LIMIT_BURST": "10"}).rate_limit.burst == 10


@pytest.mark.parametrize(
    "env",
    [
        {"RATE_LIMIT_PER_MINUTE": "-1"},
        {"RATE_LIMIT_PER_MINUTE": "ten"},
        {"RATE_LIMIT_PER_MINUTE": "60", "RATE_LIMIT_BURST": "0"},
        {"RATE_LIMIT_PER_MINUTE": "9" * 5000},
        {"MAX_BODY_BYTES": "0"},
        {"MAX_BODY_BYTES": "1.5"},
    ],
)
def test_malformed_numbers_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="whole number"):
        load_settings(env)


def test_body_limit_is_configurable() -> None:
    assert load_settings({}).max_body_bytes == 64 * 1024
    assert load_settings({"MAX_BODY_BYTES": "1024"}).max_body_bytes == 1024


JWT = {"JWT_ISSUER": "https://idp.example", "JWT_AUDIENCE": "telehealth-api"}


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"JWT_ISSUER": "https://idp.example"}, "JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY"),
        ({"JWT_HS256_SECRET": "s" * 32, "JWT_ISSUER": "https://idp.example"}, "JWT_AUDIENCE"),
        ({**JWT, "JWT_HS256_SECRET": "short"}, "at least 32 bytes"),
    ],
)
def test_incomplete_jwt_settings_are_refused(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        load_settings(env)


def test_prod_may_rely_on_jwts_alone() -> None:
    settings = load_settings({"APP_STAGE": "prod", "DATABASE_URL": PG, **JWT, "JWT_HS256_SECRET": "s" * 32})

    assert settings.token_digests == () and settings.jwt is not None
