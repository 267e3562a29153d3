"""The maintained patient count under concurrent creates and deletes, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, text

from chalicelib import bootstrap
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import ROW_COUNT_SHARDS, Patient

WRITERS = 6
CREATES_PER_WRITER = 12
DELETES_PER_WRITER = 5


def exact_count() -> int:
    with get_engine().connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Patient)) or 0)


def test_concurrent_creates_and_deletes_lose_no_count(configured_app: str) -> None:
    # GIVEN writers that start together
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        start.wait()
        created = [
            patients.create_patient(
                UnitOfWork(),
                {"name": f"W{number}", "email": f"w{number}.{i}@example.com"},
                settings=bootstrap.patient_settings(),
            ).patient.id
            for i in range(CREATES_PER_WRITER)
        ]
        for patient_id in created[:DELETES_PER_WRITER]:
            patients.delete_patient(UnitOfWork(), str(patient_id))

    # WHEN they create and delete at the same time
    with ThreadPoolExecutor(WRITERS) as pool:
        for done in [pool.submit(writer, n) for n in range(WRITERS)]:
            done.result()

    # THEN the maintained total is exact
    expected = WRITERS * (CREATES_PER_WRITER - DELETES_PER_WRITER)
    assert exact_count() == expected
    assert patients.list_patients(ReadTransaction(), None, None).total == expected


def test_creates_spread_their_count_over_the_shards_and_the_total_stays_exact(configured_app: str) -> None:
    # WHEN patients are created one after another
    for i in range(40):
        patients.create_patient(
            UnitOfWork(), {"name": "S", "email": f"s{i}@example.com"}, settings=bootstrap.patient_settings()
        )

    # THEN their counts went to several counter rows (shards picked at random: all 40 on one
    # would happen once in 64^39), and the total is their sum, exact
    with get_engine().connect() as connection:
        shards = dict(connection.execute(text("SELECT shard, row_count FROM row_counts")).all())
    assert set(shards) == set(range(ROW_COUNT_SHARDS))
    assert len([count for count in shards.values() if count]) > 1
    assert sum(shards.values()) == 40 == patients.list_patients(ReadTransaction(), None, None).total


def test_recount_repairs_a_counter_after_writes_behind_the_api(configured_app: str) -> None:
    patients.create_patient(
        UnitOfWork(), {"name": "A", "email": "a@example.com"}, settings=bootstrap.patient_settings()
    )
    with get_engine().begin() as connection:
        connection.execute(text("UPDATE row_counts SET row_count = 42"))

    with UnitOfWork() as uow:
        assert uow.patients.recount() == 1
        uow.commit()

    assert patients.list_patients(ReadTransaction(), None, None).total == 1
