"""The schema comes from Alembic migrations, and they match the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url

from chalicelib.storage.migrate import upgrade_database
from chalicelib.storage.models import Base


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
    from chalicelib.config.settings import normalize_database_url

    assert normalize_database_url(f"{url_scheme}u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, on SQLite or on the suite's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data.db'}"
        return
    server_url = make_url(request.getfixturevalue("postgres_server_url"))
    admin = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"telehealth_migration_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield server_url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PATIENT_COLUMNS = "name, email, email_key, version, created_at, updated_at"


def add_patient(connection: Connection, email: str) -> int:
    return int(
        connection.execute(
            text(f"INSERT INTO patients ({PATIENT_COLUMNS}) VALUES ('P', :e, :e, 1, :t, :t) RETURNING id"),
            {"e": email, "t": datetime(2026, 1, 1)},
        ).scalar_one()
    )


def test_patient_ids_of_deleted_patients_are_not_handed_out_after_the_upgrade(unmigrated_url: str) -> None:
    # GIVEN a database before migration 0006, holding patients, one of them the deleted newest,
    # and the trail and notification history of patients deleted earlier, with higher ids
    upgrade_database(unmigrated_url, "0005")
    engine = create_engine(unmigrated_url)
    with engine.begin() as connection:
        kept = [add_patient(connection, f"p{n}@example.com") for n in range(3)]
        connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": kept.pop()})
        connection.execute(
            text(
                "INSERT INTO audit_events (occurred_at, principal, action, patient_id)"
                " VALUES (:t, 'p', 'x', 7)"
            ),
            {"t": datetime(2026, 1, 1)},
        )
        connection.execute(
            text(
                "INSERT INTO notifications (id, patient_id, event, channels, status, attempts,"
                " delivered_channels, created_at, updated_at)"
                " VALUES ('n', 9, 'e', 'email', 'delivered', 1, '', :t, :t)"
            ),
            {"t": datetime(2026, 1, 1)},
        )
        before = connection.execute(text("SELECT * FROM patients ORDER BY id")).all()
    indexes_before = inspect(engine).get_indexes("patients")
    unique_before = inspect(engine).get_unique_constraints("patients")
    engine.dispose()

    # WHEN the database is upgraded (through 0006; later revisions add columns and indexes)
    upgrade_database(unmigrated_url, "0006")

    # THEN the patients are kept as they were, with their indexes and constraints
    engine = create_engine(unmigrated_url)
    try:
        with engine.begin() as connection:
            assert connection.execute(text("SELECT * FROM patients ORDER BY id")).all() == before
        assert inspect(engine).get_indexes("patients") == indexes_before
        assert inspect(engine).get_unique_constraints("patients") == unique_before
        # and a new patient gets an id above every id ever used, again after the newest is deleted
        with engine.begin() as connection:
            newest = add_patient(connection, "new@example.com")
            connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": newest})
            after_delete = add_patient(connection, "newer@example.com")
        assert 9 < newest < after_delete
    finally:
        engine.dispose()


def test_idempotency_keys_lose_their_copies_of_patient_data_on_upgrade(unmigrated_url: str) -> None:
    # GIVEN a key row written before migration 0007, holding the patient as first created
    upgrade_database(unmigrated_url, "0006")
    engine = create_engine(unmigrated_url)
    old_result = '{"patient":{"id":1,"name":"Ann Old","email":"ann@example.com"},"notification_id":"n-1"}'
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO idempotency_keys (principal, key, request_sha256, patient_id, result,"
                " created_at, expires_at) VALUES ('p', 'k', 'h', 1, :r, :t, :t)"
            ),
            {"r": old_result, "t": datetime(2026, 1, 1)},
        )
    engine.dispose()

    # WHEN the database is upgraded
    upgrade_database(unmigrated_url)

    # THEN the row keeps the ids and nothing of the patient
    engine = create_engine(unmigrated_url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT patient_id, result FROM idempotency_keys")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, '{"notification_id":"n-1"}')]


def test_the_patient_count_is_spread_over_shards_on_upgrade_and_gathered_on_downgrade(
    unmigrated_url: str,
) -> None:
    # GIVEN a database before migration 0009 holding patients, its single counter row wrong
    upgrade_database(unmigrated_url, "0008")
    engine = create_engine(unmigrated_url)
    try:
        with engine.begin() as connection:
            for n in range(3):
                add_patient(connection, f"c{n}@example.com")
            connection.execute(text("UPDATE row_counts SET row_count = 99"))

        # WHEN it is upgraded
        upgrade_database(unmigrated_url)

        # THEN the count is counted afresh, on shard 0 of 64
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT shard, row_count FROM row_counts ORDER BY shard")).all()
        assert [tuple(row) for row in rows] == [(0, 3), *((shard, 0) for shard in range(1, 64))]

        # AND downgraded again, one row holds the count
        from alembic import command

        from chalicelib.storage.migrate import alembic_config

        with engine.begin() as connection:
            config = alembic_config(unmigrated_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
        with engine.begin() as connection:
            assert connection.execute(text("SELECT table_name, row_count FROM row_counts")).all() == [
                ("patients", 3)
            ]
    finally:
        engine.dispose()


def test_the_accounting_of_disclosures_starts_empty_and_older_rows_keep_their_patient(
    unmigrated_url: str,
) -> None:
    # GIVEN a database before migration 0010 whose trail has a read naming its patient
    upgrade_database(unmigrated_url, "0009")
    engine = create_engine(unmigrated_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, principal, action, patient_id, status)"
                    " VALUES (:t, 'p', 'patient.read', 7, 200)"
                ),
                {"t": datetime(2026, 1, 1)},
            )

        # WHEN it is upgraded
        upgrade_database(unmigrated_url)

        # THEN the disclosures table exists, empty: the old read is found by its patient_id
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_disclosures")).scalar_one() == 0
            assert connection.execute(text("SELECT patient_id FROM audit_events")).scalar_one() == 7

        # AND downgraded again, the table is gone and the trail untouched
        from alembic import command

        from chalicelib.storage.migrate import alembic_config

        with engine.begin() as connection:
            config = alembic_config(unmigrated_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0009")
        assert "audit_disclosures" not in inspect(engine).get_table_names()
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 1
    finally:
        engine.dispose()


def test_existing_names_are_indexed_for_search_on_upgrade_and_dropped_on_downgrade(
    unmigrated_url: str,
) -> None:
    # GIVEN patients stored before migration 0011
    upgrade_database(unmigrated_url, "0010")
    engine = create_engine(unmigrated_url)
    try:
        with engine.begin() as connection:
            ids = [add_patient(connection, f"s{n}@example.com") for n in range(3)]
            connection.execute(text("UPDATE patients SET name = 'Jöhn Dőe' WHERE id = :id"), {"id": ids[0]})

        # WHEN the database is upgraded
        upgrade_database(unmigrated_url)

        # THEN each name's prefixes are stored and indexed, through the triggers that keep them
        with engine.begin() as connection:
            prefixes = connection.execute(
                text("SELECT prefix FROM patient_name_prefixes WHERE patient_id = :id ORDER BY prefix"),
                {"id": ids[0]},
            ).scalars()
            assert list(prefixes) == ["d", "do", "doe", "j", "jo", "joh", "john"]
            assert connection.execute(text("SELECT count(*) FROM patient_name_prefixes")).scalar() == 7 + 2
            connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": ids[0]})
            assert connection.execute(text("SELECT count(*) FROM patient_name_prefixes")).scalar() == 2

        # AND downgraded, the table, the column and the triggers are gone
        from alembic import command

        from chalicelib.storage.migrate import alembic_config

        with engine.begin() as connection:
            config = alembic_config(unmigrated_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
        assert "patient_name_prefixes" not in inspect(engine).get_table_names()
        assert "name_prefixes" not in {column["name"] for column in inspect(engine).get_columns("patients")}
        with engine.begin() as connection:
            add_patient(connection, "after-downgrade@example.com")  # no trigger left to fail
    finally:
        engine.dispose()
