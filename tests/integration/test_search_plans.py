"""Each search criterion is answered from an index, never a walk of the table, on PostgreSQL
(``EXPLAIN``) and SQLite (``EXPLAIN QUERY PLAN``), over enough realistic rows for the planner to
choose as it would in production (statistics gathered by ANALYZE)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert

from chalicelib.patients.names import name_prefixes_json, name_words
from chalicelib.patients.queries import PatientSearch, _search_statement
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import Patient

ROWS = 20_000
FIRST = ["John", "Jöhn", "Joseph", "José", "Maria", "María", "Anna", "Ängel", "Zoë", "Chloé", "Liam", "Noah"]
LAST = ["Doe", "Dőe", "García", "Müller", "Smith", "O'Brien", "Nguyễn", "Dominguez", "Jones", "Łukasz"]
START = datetime(2026, 1, 1)


def load(connection: Connection) -> None:
    pick = random.Random(20)  # noqa: S311 - sample data
    rows = []
    for i in range(ROWS):
        name = f"{pick.choice(FIRST)} {pick.choice(LAST)} {i}"
        at = START + timedelta(minutes=i)
        rows.append(
            {
                "name": name,
                "name_prefixes": name_prefixes_json(name),
                "email": f"p{i}@example.com",
                "email_key": f"p{i}@example.com",
                "phone": f"+1 212 555 {i % 10000:04d}",
                "phone_e164": f"+1212555{i % 10000:04d}",
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
    connection.execute(insert(Patient), rows)


CRITERIA = {
    "name": PatientSearch(name_prefixes=tuple(name_words("jo do"))),
    "email": PatientSearch(email_key="p123@example.com"),
    "phone": PatientSearch(phone_e164="+12125550123"),
    "created_since": PatientSearch(created_since=START + timedelta(minutes=ROWS - 50)),
    "updated_since": PatientSearch(updated_since=START + timedelta(minutes=ROWS - 50)),
}
INDEXES = {
    "name": "pk_patient_name_prefixes",
    "email": "uq_patients_email_key",
    "phone": "ix_patients_phone_e164",
    "created_since": "ix_patients_created_at",
    "updated_since": "ix_patients_updated_at",
}
# SQLite names a WITHOUT ROWID table's key and a UNIQUE column's index its own way.
SQLITE_INDEXES = {**INDEXES, "name": "USING PRIMARY KEY (prefix=?", "email": "(email_key=?)"}


def plan(connection: Connection, criteria: PatientSearch) -> str:
    statement = _search_statement(*criteria.shape())
    compiled = statement.compile(dialect=connection.dialect)
    values = compiled.construct_params({"after": 0, "limit": 21, **criteria.parameters()})
    args: Any = values
    if connection.dialect.name == "postgresql":
        explain = "EXPLAIN "
    else:
        explain = "EXPLAIN QUERY PLAN "
        stored = {k: (v.isoformat(" ") if isinstance(v, datetime) else v) for k, v in values.items()}
        args = tuple(stored[name] for name in compiled.positiontup or ())
    rows = connection.exec_driver_sql(explain + compiled.string, args).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.fixture
def loaded(configured_app: str) -> str:
    with get_engine().begin() as connection:
        load(connection)
    with get_engine().connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("ANALYZE")
    return configured_app


@pytest.mark.parametrize("criterion", list(CRITERIA))
def test_each_criterion_is_answered_from_its_index(loaded: str, criterion: str) -> None:
    with get_engine().connect() as connection:
        shown = plan(connection, CRITERIA[criterion])

    if loaded.startswith("postgresql"):
        assert INDEXES[criterion] in shown, shown
        assert "Seq Scan" not in shown, shown
    else:
        assert SQLITE_INDEXES[criterion] in shown, shown
        # SQLite's words for walking a whole table: "SCAN <table>" without an index.
        walks = [line for line in shown.splitlines() if line.startswith("SCAN") and "INDEX" not in line]
        assert walks == [], shown
