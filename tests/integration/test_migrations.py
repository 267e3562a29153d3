"""The schema comes from Alembic migrations, and they match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from chalicelib.models import Base
from chalicelib.schema import upgrade_database


def schema_differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_models(database_url: str) -> None:
    assert schema_differences(database_url) == []


def test_upgrade_from_empty_and_again_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    upgrade_database(url)
    upgrade_database(url)

    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"patients", "alembic_version"} <= tables


def test_an_empty_database_differs_from_the_models(tmp_path: Path) -> None:
    # GIVEN no migrations applied THEN the comparison reports the missing tables (the check can fail)
    differences = schema_differences(f"sqlite:///{tmp_path / 'empty.db'}")

    assert any(diff[0] == "add_table" for diff in differences if isinstance(diff, tuple))


@pytest.mark.parametrize("url_scheme", ["postgres://", "postgresql://"])
def test_plain_postgres_urls_are_accepted(url_scheme: str) -> None:
    from chalicelib.config import normalize_database_url

    assert normalize_database_url(f"{url_scheme}u@h/db") == "postgresql+psycopg://u@h/db"
