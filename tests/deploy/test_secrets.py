"""prod reads its token digests and database URL from AWS (moto), once per process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.secrets import aws_client
from chalicelib.config.settings import get_settings, load_settings
from chalicelib.config.tokens import token_sha256
from tests.helpers import configure_environment

TOKENS_SECRET = "telehealth-api/test/api-token-sha256"
DATABASE_PARAMETER = "/telehealth-api/test/database-url"
PG = "postgresql://clinic@db.internal/telehealth"
REFERENCES = {
    "APP_STAGE": "prod",
    "API_TOKENS_SECRET_ID": TOKENS_SECRET,
    "DATABASE_URL_PARAMETER": DATABASE_PARAMETER,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto account; yields a function storing the two secrets."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_client.cache_clear()
    with mock_aws():

        def store(tokens: str, database_url: str) -> None:
            aws_client("secretsmanager").create_secret(Name=TOKENS_SECRET, SecretString=tokens)
            aws_client("ssm").put_parameter(Name=DATABASE_PARAMETER, Value=database_url, Type="SecureString")

        yield store
    aws_client.cache_clear()


def digest_entry(principal: str, token: str) -> str:
    return f"{principal}:{token_sha256(token).hex()}"


def test_prod_reads_token_digests_and_database_url_from_aws(aws: Any) -> None:
    # GIVEN the digests in Secrets Manager and the URL in an SSM SecureString
    aws(f"{digest_entry('clinic-a', 'alpha')},{digest_entry('ops', 'beta')}", PG)

    # WHEN prod loads its settings
    settings = load_settings(REFERENCES)

    # THEN both come from AWS
    assert [t.principal for t in settings.token_digests] == ["clinic-a", "ops"]
    assert settings.token_digests[1].sha256 == token_sha256("beta")
    assert settings.database_url == "postgresql+psycopg://clinic@db.internal/telehealth"


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


def test_secrets_are_read_once_per_process(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws(digest_entry("clinic", "first"), PG)
    configure_environment(monkeypatch, **REFERENCES)
    first = get_settings()

    # A rotation in AWS reaches the next cold start, not a warm container.
    aws_client("secretsmanager").put_secret_value(SecretId=TOKENS_SECRET, SecretString=digest_entry("c", "x"))

    assert get_settings() is first
    assert first.token_digests[0].sha256 == token_sha256("first")
    get_settings.cache_clear()
    assert get_settings().token_digests[0].sha256 == token_sha256("x")
    get_settings.cache_clear()


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
