"""The Lambda engine on real PostgreSQL: one per container, reused, proxy-friendly."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from chalicelib.config.environment import ConfigurationError
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import build_engine, get_engine
from chalicelib.storage.rds_iam_auth import RDS_IAM_AUTH, rds_client
from tests.helpers.environment import configure_environment, load_dev_settings

PG = "postgresql://clinic@db.internal/telehealth"


def backend_pid() -> int:
    with UnitOfWork() as uow:
        return int(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_units_of_work_in_one_container_reuse_one_connection(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    # GIVEN the prod pool: one connection kept between invocations
    configure_environment(monkeypatch, DATABASE_URL=postgres_url, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="2")

    # WHEN two invocations each run a unit of work
    pids = {backend_pid(), backend_pid()}

    # THEN they share the engine and its one server connection
    assert get_engine() is get_engine()
    assert isinstance(get_engine().pool, QueuePool) and get_engine().pool.size() == 1
    assert len(pids) == 1


def test_null_pool_opens_a_connection_per_unit_of_work(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    configure_environment(monkeypatch, DATABASE_URL=postgres_url, DB_POOL="null")

    assert isinstance(get_engine().pool, NullPool)
    assert backend_pid() != backend_pid()


def test_no_server_side_prepared_statements_that_would_pin_rds_proxy(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    configure_environment(monkeypatch, DATABASE_URL=postgres_url, DB_POOL_SIZE="1")

    with get_engine().connect() as connection:
        for _ in range(10):  # psycopg would prepare from the 6th run by default
            connection.execute(text("SELECT count(*) FROM patients WHERE id = :id"), {"id": 1})
        prepared = connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()

    assert prepared == 0


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"DB_POOL": "static"}, "DB_POOL must be one of"),
        ({"DB_POOL_SIZE": "one"}, "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE must be a whole number of at least 1"),
        ({"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW"),
    ],
)
def test_pool_settings_are_checked(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        load_dev_settings({"DATABASE_URL": PG, **env})


def test_a_url_marked_for_iam_auth_connects_with_a_fresh_signed_token_as_its_password(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    # GIVEN the data tier's kind of URL (no password, rds_iam_auth=true) and AWS credentials
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    rds_client.cache_clear()
    url = make_url(postgres_url)
    assert url.password is None
    configure_environment(monkeypatch, DATABASE_URL=f"{postgres_url}?{RDS_IAM_AUTH}=true", DB_POOL="null")
    passwords: list[str] = []
    event.listen(
        get_engine(), "do_connect", lambda _d, _r, _a, parameters: passwords.append(parameters["password"])
    )

    # WHEN two units of work open a connection each (the local server trusts, RDS Proxy would check)
    backend_pid(), backend_pid()

    # THEN the marker never reached the driver, and each connection got a token for its host, port and user
    assert RDS_IAM_AUTH not in get_engine().url.query
    assert len(passwords) == 2
    for password in passwords:
        assert password.startswith(f"{url.host}:{url.port or 5432}/?Action=connect&DBUser={url.username}&")
        assert "X-Amz-Signature=" in password


@pytest.mark.parametrize(
    "url, reason",
    [
        (f"postgresql://clinic@db.internal/telehealth?{RDS_IAM_AUTH}=yes", "must be 'true'"),
        (f"postgresql://clinic:secret@db.internal/telehealth?{RDS_IAM_AUTH}=true", "and no password"),
        (f"postgresql://db.internal/telehealth?{RDS_IAM_AUTH}=true", "names a user"),
    ],
)
def test_an_iam_auth_url_without_a_user_or_with_a_password_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build_engine(url)
