"""``make bench-lists``: patient lists at a million rows, on PostgreSQL and SQLite.

Loads the rows into a throwaway database (COPY on PostgreSQL, one executemany
transaction on SQLite), then times requests through the Chalice app in-process
(chalice.test.Client: routing, authorizer, handler, service, database) and
prints median and p99 per case. PostgreSQL is TEST_POSTGRES_URL's server or an
embedded one; the bench creates its own database there and drops it after.

    python -m bench.patient_lists [--rows 1000000] [--requests 200] [--databases sqlite postgresql]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

TOKEN = "bench-token"  # noqa: S105 - a throwaway database's only token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PER_PAGE = 20
CHUNK = 50_000
COLUMNS = ("name", "email", "email_key", "phone", "phone_e164", "version", "created_at", "updated_at")
LOADED_AT = datetime(2026, 1, 1, 12, 0, 0)


def patient_rows(count: int) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        email = f"bench.patient.{i}@example.com"
        yield (f"Bench Patient {i}", email, email, "+1 212 555 0100", "+12125550100", 1, LOADED_AT, LOADED_AT)


# --- throwaway databases -------------------------------------------------------------------------


@contextmanager
def sqlite_database(rows: int) -> Iterator[str]:
    from chalicelib.storage.migrate import upgrade_database

    with tempfile.TemporaryDirectory(prefix="bench-lists-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade_database(url)
        load_sqlite(Path(directory) / "bench.db", rows)
        yield url


def load_sqlite(path: Path, rows: int) -> None:
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    statement = f"INSERT INTO patients ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    started = time.perf_counter()
    with tqdm(total=rows, unit=" rows", desc="SQLite load", file=sys.stderr) as progress:
        connection.execute("BEGIN")
        batch: list[tuple[Any, ...]] = []
        for row in patient_rows(rows):
            batch.append((*row[:6], row[6].isoformat(" "), row[7].isoformat(" ")))
            if len(batch) == CHUNK:
                connection.executemany(statement, batch)
                progress.update(len(batch))
                batch = []
        connection.executemany(statement, batch)
        progress.update(len(batch))
        connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    print(f"SQLite: loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)


@contextmanager
def postgres_database(rows: int) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    from chalicelib.config.settings import normalize_database_url
    from chalicelib.storage.migrate import upgrade_database

    with postgres_server() as server_url:
        name = f"bench_lists_{uuid.uuid4().hex[:12]}"
        admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(server_url).set(database=name)
            upgrade_database(url.render_as_string(hide_password=False))
            load_postgres(url.set(drivername="postgresql").render_as_string(hide_password=False), rows)
            yield normalize_database_url(url.render_as_string(hide_password=False))
        finally:
            from chalicelib.bootstrap import reset_for_tests

            reset_for_tests()
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_server() -> Iterator[str]:
    from chalicelib.config.settings import normalize_database_url

    configured = os.environ.get("TEST_POSTGRES_URL")
    if configured:
        yield normalize_database_url(configured)
        return
    from scripts.embedded_services import start_embedded_postgres

    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as directory:
        server = start_embedded_postgres(Path(directory))
        yield normalize_database_url(server.get_uri("postgres"))


def load_postgres(libpq_url: str, rows: int) -> None:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(libpq_url) as connection:
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY patients ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            tqdm(total=rows, unit=" rows", desc="PostgreSQL COPY", file=sys.stderr) as progress,
        ):
            for number, row in enumerate(patient_rows(rows), start=1):
                copy.write_row(row)
                if number % CHUNK == 0:
                    progress.update(CHUNK)
            progress.update(rows % CHUNK)
        connection.commit()
        connection.autocommit = True
        # Sets the visibility map, so skipping rows by page number can use an index-only scan.
        connection.execute("VACUUM ANALYZE patients")
    print(f"PostgreSQL: loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)


# --- measuring through the app -------------------------------------------------------------------


def point_app_at(database_url: str) -> Any:
    """Configure the process for ``database_url``; return a chalice.test.Client over the app."""
    import chalice.test

    from chalicelib.bootstrap import reset_for_tests
    from chalicelib.service_layer.unit_of_work import UnitOfWork

    os.environ.update(DATABASE_URL=database_url, APP_STAGE="dev", API_TOKENS=f"bench:{TOKEN}")
    reset_for_tests()
    with UnitOfWork() as uow:  # the rows were loaded behind the API's back
        uow.patients.recount()
        uow.commit()
    from app import app

    return chalice.test.Client(app, stage_name="dev")


def timed(request: Callable[[], Any], requests: int) -> list[float]:
    for _ in range(5):  # warm the engine's pool and the database's cache
        request()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = request()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"bench request answered {response.status_code}: {response.body[:200]!r}")
    return samples


def run_cases(client: Any, requests: int) -> list[tuple[str, list[float]]]:
    def get(path: str) -> Callable[[], Any]:
        return lambda: client.http.get(path, headers=AUTH)

    def page_body(page: int) -> dict[str, Any]:
        return dict(client.http.get(f"/patients?page={page}&per_page={PER_PAGE}", headers=AUTH).json_body)

    pages = page_body(1)["pages"]
    middle, last = max(1, pages // 2), pages
    # The cursor a client holds when it reaches those pages: the next link of the page before.
    middle_by_cursor = page_body(middle - 1)["next"] if middle > 1 else f"/patients?per_page={PER_PAGE}"
    last_by_cursor = page_body(last - 1)["next"] if last > 1 else f"/patients?per_page={PER_PAGE}"
    lowest, highest = page_body(1)["patients"][0]["id"], page_body(last)["patients"][-1]["id"]
    ids = random.Random(7)  # noqa: S311 - spreads reads over the table, not a secret

    return [
        (name, timed(request, requests))
        for name, request in (
            ("first page       ?page=1", get(f"/patients?page=1&per_page={PER_PAGE}")),
            (f"middle page      ?page={middle}", get(f"/patients?page={middle}&per_page={PER_PAGE}")),
            (f"last page        ?page={last}", get(f"/patients?page={last}&per_page={PER_PAGE}")),
            (f"middle by cursor {middle_by_cursor[9:]}", get(middle_by_cursor)),
            (f"last by cursor   {last_by_cursor[9:]}", get(last_by_cursor)),
            (
                "GET /patients/{id} (random ids)",
                lambda: client.http.get(f"/patients/{ids.randint(lowest, highest)}", headers=AUTH),
            ),
        )
    ]


def count_star_ms(database_url: str) -> float:
    """What a total by count(*) would cost, for comparison with the maintained counter."""
    from sqlalchemy import text

    from chalicelib.storage.database import get_engine

    with get_engine().connect() as connection:
        connection.execute(text("SELECT count(*) FROM patients"))
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            connection.execute(text("SELECT count(*) FROM patients")).scalar()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def report(title: str, results: list[tuple[str, list[float]]], count_ms: float) -> None:
    print(f"\n{title}")
    print(f"  {'case':<44} {'median ms':>10} {'p99 ms':>10}")
    for name, samples in results:
        p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
        print(f"  {name:<44} {statistics.median(samples):>10.2f} {p99:>10.2f}")
    first = statistics.median(results[0][1])
    last_by_cursor = statistics.median(results[4][1])
    last_by_number = statistics.median(results[2][1])
    print(f"  last page by cursor / first page (median): {last_by_cursor / first:.2f}x (target: at most 2x)")
    print(f"  last page by number / first page (median): {last_by_number / first:.2f}x")
    print(f"  for comparison, SELECT count(*) alone: {count_ms:.1f} ms (the API sums its counter rows)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    parser.add_argument(
        "--databases", nargs="+", choices=("postgresql", "sqlite"), default=["postgresql", "sqlite"]
    )
    args = parser.parse_args()

    databases = {"postgresql": postgres_database, "sqlite": sqlite_database}
    for name in args.databases:
        with databases[name](args.rows) as url:
            client = point_app_at(url)
            results = run_cases(client, args.requests)
            title = f"{name}: {args.rows:,} patients, per_page={PER_PAGE}, {args.requests} requests per case"
            report(title, results, count_star_ms(url))


if __name__ == "__main__":
    main()
