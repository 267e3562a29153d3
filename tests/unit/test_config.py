"""Settings: safe development defaults, loud refusal of unsafe production ones."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.config import (
    DEVELOPMENT_PRINCIPAL,
    ConfigurationError,
    load_settings,
    token_sha256,
)

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
