"""prod reads its token digests, database URL and Redis URL from AWS (moto); the digests again after a TTL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib import bootstrap
from chalicelib.access.identity import Identity, identify
from chalicelib.bootstrap import auth_settings, reset_for_tests
from chalicelib.config import token_secret
from chalicelib.config.environment import ConfigurationError
from chalicelib.config.secrets import secrets_client
from chalicelib.config.settings import load_auth_settings, load_settings
from chalicelib.config.tokens import token_sha256
from chalicelib.scopes import DEFAULT_SCOPES
from tests.helpers.environment import configure_environment

TOKENS_SECRET = "telehealth-api/test/api-token-sha256"
DATABASE_PARAMETER = "/telehealth-api/test/database-url"
REDIS_PARAMETER = "/telehealth-api/test/redis-url"
PG = "postgresql://clinic@db.internal/telehealth"
REDIS = "redis://cache.internal:6379/0"
IDEMPOTENCY_SECRET = "telehealth-api/test/idempotency-key"
IDEMPOTENCY_KEY = "an-idempotency-key-of-more-than-32-bytes"
REFERENCES = {
    "APP_STAGE": "prod",
    "API_TOKENS_SECRET_ID": TOKENS_SECRET,
    "DATABASE_URL_PARAMETER": DATABASE_PARAMETER,
    "REDIS_URL_PARAMETER": REDIS_PARAMETER,
    "IDEMPOTENCY_KEY_SECRET_ID": IDEMPOTENCY_SECRET,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto account; yields a function storing the three secrets."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_for_tests()
    with mock_aws():

        def store(tokens: str, database_url: str, redis_url: str = REDIS) -> None:
            secrets_client("secretsmanager").create_secret(Name=TOKENS_SECRET, SecretString=tokens)
            secrets_client("secretsmanager").create_secret(
                Name=IDEMPOTENCY_SECRET, SecretString=IDEMPOTENCY_KEY
            )
            secrets_client("ssm").put_parameter(
                Name=DATABASE_PARAMETER, Value=database_url, Type="SecureString"
            )
            if redis_url:
                secrets_client("ssm").put_parameter(
                    Name=REDIS_PARAMETER, Value=redis_url, Type="SecureString"
                )

        yield store
    reset_for_tests()


def digest_entry(principal: str, token: str) -> str:
    return f"{principal}:{token_sha256(token).hex()}"


def test_prod_reads_token_digests_and_database_url_from_aws(aws: Any) -> None:
    # GIVEN the digests in Secrets Manager and the URL in an SSM SecureString
    aws(f"{digest_entry('clinic-a', 'alpha')},{digest_entry('ops', 'beta')}", PG)

    # WHEN prod loads its settings
    settings = load_settings(REFERENCES)

    # THEN both come from AWS
    assert [t.principal for t in settings.auth.token_digests] == ["clinic-a", "ops"]
    assert settings.auth.token_digests[1].sha256 == token_sha256("beta")
    assert settings.database_url == "postgresql+psycopg://clinic@db.internal/telehealth"
    assert settings.redis_url == REDIS


def test_the_authorizers_settings_read_the_token_secret_and_nothing_else(aws: Any) -> None:
    # GIVEN the token secret in AWS, and a database parameter that cannot be read
    aws(digest_entry("clinic-a", "alpha"), PG, redis_url="")
    secrets_client("ssm").delete_parameter(Name=DATABASE_PARAMETER)

    # WHEN the authorizer's function loads its settings
    auth = load_auth_settings(REFERENCES)

    # THEN the tokens are there; the database and Redis parameters were never read
    assert [t.principal for t in auth.current_token_digests()] == ["clinic-a"]
    with pytest.raises(ConfigurationError, match="DATABASE_URL_PARAMETER"):
        load_settings(REFERENCES)


def test_prod_without_its_redis_parameter_refuses_to_start(aws: Any) -> None:
    aws(digest_entry("clinic-a", "alpha"), PG, redis_url="")

    with pytest.raises(ConfigurationError, match="REDIS_URL_PARAMETER.*redis-url"):
        load_settings(REFERENCES)


@pytest.mark.parametrize(
    "tokens, database_url, reason",
    [
        ("ops:" + token_sha256("secret-token-123").hex(), PG, "development token"),
        (digest_entry("ops", "strong"), "sqlite:////tmp/telehealth.db", "SQLite"),
        ("", PG, "API_TOKENS"),
    ],
)
def test_prod_refuses_unsafe_values_that_come_from_aws(
    aws: Any, tokens: str, database_url: str, reason: str
) -> None:
    aws(tokens or " ", database_url)

    with pytest.raises(ConfigurationError, match=reason):
        load_settings(REFERENCES)


def test_settings_are_read_once_per_process(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws(digest_entry("clinic", "first"), PG)
    configure_environment(monkeypatch, **REFERENCES)
    first = bootstrap.settings()

    secrets_client("ssm").put_parameter(
        Name=DATABASE_PARAMETER, Value=PG + "2", Type="SecureString", Overwrite=True
    )

    assert bootstrap.settings() is first and first.database_url.endswith("/telehealth")
    reset_for_tests()
    assert bootstrap.settings().database_url.endswith("/telehealth2")
    reset_for_tests()


class Clock:
    """token_secret's monotonic clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(token_secret, "clock", clock)
    return clock


def remove_from_secret(principal: str) -> None:
    client = secrets_client("secretsmanager")
    entries = client.get_secret_value(SecretId=TOKENS_SECRET)["SecretString"].split(",")
    kept = ",".join(entry for entry in entries if not entry.startswith(f"{principal}:"))
    client.put_secret_value(SecretId=TOKENS_SECRET, SecretString=kept)


def test_a_token_removed_from_the_secret_is_refused_after_the_cache_ttl(
    aws: Any, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    # GIVEN a warm container that has accepted two tokens from the secret, re-read every 60 s
    aws(f"{digest_entry('clinic-a', 'alpha')},{digest_entry('ops', 'beta')}", PG)
    configure_environment(monkeypatch, **REFERENCES, TOKEN_CACHE_SECONDS="60")
    assert identify("Bearer alpha", auth_settings()) == Identity("clinic-a", DEFAULT_SCOPES)

    # WHEN clinic-a's digest is removed from the secret
    remove_from_secret("clinic-a")

    # THEN it keeps working until the TTL has passed, then is refused; the other token is not
    clock.now += 59
    assert identify("Bearer alpha", auth_settings()) is not None
    clock.now += 1
    assert identify("Bearer alpha", auth_settings()) is None
    assert identify("Bearer beta", auth_settings()) == Identity("ops", DEFAULT_SCOPES)
    reset_for_tests()


def test_when_the_secret_cannot_be_read_the_last_good_set_serves_for_a_bounded_time(
    aws: Any, monkeypatch: pytest.MonkeyPatch, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a warm container with a token read from the secret
    aws(digest_entry("clinic-a", "alpha"), PG)
    configure_environment(monkeypatch, **REFERENCES, TOKEN_CACHE_SECONDS="60")
    assert identify("Bearer alpha", auth_settings()) is not None

    # WHEN Secrets Manager refuses every read from now on (here: the secret is gone)
    secrets_client("secretsmanager").delete_secret(SecretId=TOKENS_SECRET, ForceDeleteWithoutRecovery=True)

    # THEN the last good set keeps serving, with a warning naming the secret, for at most MAX_STALE_SECONDS
    clock.now += 61
    assert identify("Bearer alpha", auth_settings()) is not None
    assert any(
        "token digests not re-read" in r.getMessage() and TOKENS_SECRET in r.getMessage()
        for r in caplog.records
    )
    clock.now += token_secret.MAX_STALE_SECONDS
    assert identify("Bearer alpha", auth_settings()) is None
    reset_for_tests()


def test_a_secret_that_turns_malformed_keeps_the_last_good_set(
    aws: Any, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    aws(digest_entry("clinic-a", "alpha"), PG)
    configure_environment(monkeypatch, **REFERENCES, TOKEN_CACHE_SECONDS="60")
    assert identify("Bearer alpha", auth_settings()) is not None

    secrets_client("secretsmanager").put_secret_value(SecretId=TOKENS_SECRET, SecretString="clinic-a:not-hex")
    clock.now += 60

    assert identify("Bearer alpha", auth_settings()) is not None
    reset_for_tests()


def test_a_missing_secret_is_a_configuration_error_naming_it(aws: Any) -> None:
    with pytest.raises(ConfigurationError, match="API_TOKENS_SECRET_ID.*api-token-sha256"):
        load_settings(REFERENCES)


def test_a_reference_and_a_plain_value_together_are_refused_before_any_call_to_aws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No moto and no region: a call to AWS would fail with another message.
    for key in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)

    with pytest.raises(ConfigurationError, match="DATABASE_URL_PARAMETER or DATABASE_URL, not both"):
        load_settings({**REFERENCES, "DATABASE_URL": PG})
