"""Settings: safe development defaults, loud refusal of unsafe production ones."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.settings import load_settings
from chalicelib.config.tokens import DEVELOPMENT_PRINCIPAL, token_sha256
from tests.helpers.environment import load_dev_settings

PG = "postgresql://clinic@db.internal/telehealth"
REDIS = "redis://cache.internal:6379/0"
# What a deployment's secret would hold; at least 32 bytes.
IDEMPOTENCY_KEY = {"IDEMPOTENCY_KEY_SECRET": "k" * 32}
PROD = {"APP_STAGE": "prod", "DATABASE_URL": PG, "REDIS_URL": REDIS, **IDEMPOTENCY_KEY}
IN_LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "telehealth-api-dev", **IDEMPOTENCY_KEY}


def test_dev_defaults_to_sqlite_and_the_development_token() -> None:
    settings = load_settings({"APP_STAGE": "dev"})

    assert settings.stage == "dev"
    assert settings.is_sqlite
    assert [t.principal for t in settings.auth.token_digests] == [DEVELOPMENT_PRINCIPAL]
    assert settings.auth.token_digests[0].sha256 == token_sha256("secret-token-123")


@pytest.mark.parametrize("stage", [None, "", "staging", "Prod", "production", "DEV", " dev"])
def test_a_missing_or_unknown_stage_is_refused(stage: str | None) -> None:
    env = {"DATABASE_URL": PG, "API_TOKENS": "clinic:long-random"}
    if stage is not None:
        env["APP_STAGE"] = stage

    with pytest.raises(ConfigurationError, match="APP_STAGE .* one of dev, prod"):
        load_settings(env)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_in_lambda_no_stage_gets_the_development_token_or_the_development_database(stage: str) -> None:
    # GIVEN Lambda, whatever the stage, with neither DATABASE_URL nor tokens
    env = {**IN_LAMBDA, "APP_STAGE": stage, "REDIS_URL": REDIS}

    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(env)
    with pytest.raises(ConfigurationError, match="API_TOKENS"):
        load_settings({**env, "DATABASE_URL": PG})
    with pytest.raises(ConfigurationError, match="development token"):
        load_settings({**env, "DATABASE_URL": PG, "API_TOKENS": "secret-token-123"})


def test_in_lambda_the_dev_stage_runs_on_what_it_is_given_explicitly() -> None:
    settings = load_settings({**IN_LAMBDA, "APP_STAGE": "dev", "DATABASE_URL": PG, "API_TOKENS": "c:long"})

    assert settings.in_lambda and [t.principal for t in settings.auth.token_digests] == ["c"]


def test_prod_refuses_to_start_without_redis() -> None:
    env = {"APP_STAGE": "prod", "DATABASE_URL": PG, "API_TOKENS": "clinic:long-random"}

    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        load_settings(env)


def test_postgres_urls_use_psycopg3() -> None:
    assert load_dev_settings({"DATABASE_URL": PG}).database_url.startswith("postgresql+psycopg://")


def test_tokens_accept_principals_and_digests() -> None:
    digest = hashlib.sha256(b"from-digest").hexdigest()

    settings = load_dev_settings({"API_TOKENS": "clinic-a:alpha, beta", "API_TOKEN_SHA256": f"ops:{digest}"})

    principals = [t.principal for t in settings.auth.token_digests]
    assert principals[0] == "clinic-a"
    assert principals[1].startswith("token-") and "beta" not in principals[1]
    assert principals[2] == "ops"
    assert settings.auth.token_digests[2].sha256 == token_sha256("from-digest")


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"APP_STAGE": "prod", "REDIS_URL": REDIS, "API_TOKENS": "a:strong"}, "SQLite"),
        (PROD, "API_TOKENS"),
        ({**PROD, "API_TOKENS": "secret-token-123"}, "development token"),
        ({**PROD, "API_TOKENS": "a:strong", "NOTIFY_FAILURE_RATE": "0.25"}, "NOTIFY_FAILURE_RATE"),
        ({**PROD, "API_TOKEN_SHA256": token_sha256("secret-token-123").hex()}, "development token"),
    ],
)
def test_prod_refuses_unsafe_settings(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        load_dev_settings(env)


def test_prod_accepts_postgres_and_real_tokens() -> None:
    settings = load_settings({**PROD, "API_TOKENS": "clinic:long-random"})

    assert settings.stage == "prod"


@pytest.mark.parametrize("bad", ["abcd", "zz" * 32, "ops:" + "0" * 63])
def test_malformed_digest_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        load_dev_settings({"API_TOKEN_SHA256": bad})


def test_tokens_without_scopes_read_and_write_and_the_development_token_holds_all() -> None:
    assert load_dev_settings({"API_TOKENS": "clinic:alpha"}).auth.token_digests[0].scopes == {
        "patients:read",
        "patients:write",
    }
    assert load_dev_settings({}).auth.token_digests[0].scopes == {
        "patients:read",
        "patients:write",
        "audit:read",
    }


def test_tokens_take_scopes_in_brackets_after_the_principal() -> None:
    digest = hashlib.sha256(b"auditor-token").hexdigest()

    settings = load_dev_settings(
        {
            "API_TOKENS": "front-desk[patients:read]:alpha, ops[patients:read patients:write  audit:read]:b",
            "API_TOKEN_SHA256": f"auditor[audit:read]:{digest}, [patients:read]:{'ab' * 32}",
        }
    )

    by_principal = {t.principal: t for t in settings.auth.token_digests}
    assert by_principal["front-desk"].scopes == {"patients:read"}
    assert by_principal["front-desk"].sha256 == token_sha256("alpha")
    assert by_principal["ops"].sha256 == token_sha256("b")
    assert by_principal["ops"].scopes == {"patients:read", "patients:write", "audit:read"}
    assert by_principal["auditor"].scopes == {"audit:read"}
    assert by_principal["auditor"].sha256 == token_sha256("auditor-token")
    assert by_principal[f"token-{'ab' * 4}"].scopes == {"patients:read"}


@pytest.mark.parametrize(
    "entries, position",
    [
        ("ok:firstZq, clinic:toZq:ken", 2),  # a token holding ':' would be cut: refused, not split
        ("clinic:tokZq en", 1),
        (":tokenZq", 1),
        ("ok:firstZq, cli nic:tokenZq", 2),
        ("a\nb:tokenZq", 1),
        ("clinic/../x:tokenZq", 1),
        ("ok:firstZq, ok2:secondZq, clinic[patients:read]:toZq:ken", 3),
        ("clinic:", 1),
        ("x" * 65 + ":tokenZq", 1),
    ],
)
def test_token_entries_that_split_more_than_one_way_are_refused_by_position(
    entries: str, position: int
) -> None:
    with pytest.raises(ConfigurationError, match=f"API_TOKENS entry {position}:") as refused:
        load_dev_settings({"API_TOKENS": entries})

    assert "Zq" not in str(refused.value)


@pytest.mark.parametrize(
    "entry",
    ["a[]:t", "a[patients:delete]:t", "a[patients:read:t", "a[b[patients:read]:t", "a patients:read]:t"],
)
def test_unknown_or_malformed_scopes_are_refused(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="scope"):
        load_dev_settings({"API_TOKENS": entry})


def test_rate_limit_is_off_unless_configured_and_bursts_a_minute_by_default() -> None:
    assert not load_dev_settings({}).rate_limit.enabled

    limit = load_dev_settings({"RATE_LIMIT_PER_MINUTE": "120"}).rate_limit

    assert limit.enabled and limit.per_minute == 120 and limit.burst == 120
    assert (
        load_dev_settings({"RATE_LIMIT_PER_MINUTE": "120", "RATE_LIMIT_BURST": "10"}).rate_limit.burst == 10
    )


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
        load_dev_settings(env)


def test_body_limit_is_configurable() -> None:
    assert load_dev_settings({}).max_body_bytes == 64 * 1024
    assert load_dev_settings({"MAX_BODY_BYTES": "1024"}).max_body_bytes == 1024


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
        load_dev_settings(env)


def test_prod_may_rely_on_jwts_alone() -> None:
    settings = load_settings({**PROD, **JWT, "JWT_HS256_SECRET": "s" * 32})

    assert settings.auth.token_digests == () and settings.auth.jwt is not None


@pytest.mark.parametrize("token", ["tok\u00e9n", "tok;en", "tok\\en", "=token", "tok=en"])
def test_a_token_no_client_could_send_refuses_to_start(token: str) -> None:
    # RFC 6750's b64token is all a Bearer header may carry: a configured token outside it is a typo.
    with pytest.raises(ConfigurationError, match="entry 2: a token is made of"):
        load_dev_settings({"API_TOKENS": f"a:fine-token,b:{token}"})


def test_a_laptop_makes_its_idempotency_key_once_in_the_data_dir_for_its_owner_only(tmp_path: Path) -> None:
    # GIVEN the dev stage outside Lambda, with no key configured
    env = {"TELEHEALTH_DATA_DIR": str(tmp_path / "data")}

    # WHEN settings are read twice (two processes, or a restart)
    first, again = load_dev_settings(env), load_dev_settings(env)

    # THEN reading them wrote nothing (a refused start leaves no trace) ...
    assert not (tmp_path / "data").exists()
    # ... and the first use makes one random key that serves both, readable by its owner only
    assert first.idempotency_key() == again.idempotency_key()
    assert len(first.idempotency_key()) == 32
    [key_file] = (tmp_path / "data").iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "env, reason",
    [
        ({**PROD, "API_TOKENS": "a:strong", "IDEMPOTENCY_KEY_SECRET": ""}, "IDEMPOTENCY_KEY_SECRET"),
        ({**PROD, "API_TOKENS": "a:strong", "IDEMPOTENCY_KEY_SECRET": "short"}, "at least 32 bytes"),
        (
            {
                **IN_LAMBDA,
                "APP_STAGE": "dev",
                "DATABASE_URL": PG,
                "API_TOKENS": "c:long",
                "IDEMPOTENCY_KEY_SECRET": "",
            },
            "IDEMPOTENCY_KEY_SECRET",
        ),
    ],
)
def test_a_deployment_needs_its_idempotency_key_from_its_secret(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        load_settings(env)
