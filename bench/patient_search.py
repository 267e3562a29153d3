"""``make bench-search``: POST /patients/search at a million patients on PostgreSQL, 100,000 on SQLite.

Builds realistic rows (first names and shared surnames with accents, a Zipf-like spread of
surnames, unique emails and phones, three years of creation times), loads them into throwaway
databases, then times each criterion through the Chalice app in-process (chalice.test.Client:
routing, authorizer, handler, service, one SELECT, the audit row) and prints p50 and p99. On
PostgreSQL it also times the name query alone in SQL against the alternative it was chosen over,
a pg_trgm GIN index on a normalized column, and prints both indexes' sizes. It never asserts a
timing. PostgreSQL is TEST_POSTGRES_URL's server or an embedded one; the bench creates its own
database there and drops it after.

    python -m bench.patient_search [--rows 1000000] [--sqlite-rows 100000] [--requests 300]
                                   [--databases postgresql sqlite]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.patient_lists import AUTH, point_app_at, postgres_server
from chalicelib.patients.names import name_prefixes_json, name_words

CHUNK = 50_000
START = datetime(2024, 1, 1)
SPAN = timedelta(days=3 * 365)
COLUMNS = (
    "name",
    "name_prefixes",
    "email",
    "email_key",
    "phone",
    "phone_e164",
    "version",
    "created_at",
    "updated_at",
)
FIRST = (  # noqa: SIM905 - names as a reader scans them
    "John Jöhn Joseph José Josefina Joan Joaquín Jonas Jordan Julia Juliette Jürgen María Maria"
    " Mario Marek Anna Ánh Ängel André Andrea Zoë Chloé Noah Liam Emma Olivia Sophia Isabella Mia"
    " Amélie Lucas Léa Hugo Inès Chen Wei Fatima Aisha Omar Yusuf Priya Arjun Sven Søren Björn"
    " Ingrid Łukasz Zofia Dmitri Nikolai Kofi Ama Thiago Gonçalo Siobhán Seán Niamh Renée Noël"
    " François Dorothea"
).split()
SURNAMES = (  # noqa: SIM905 - names as a reader scans them
    "Doe Dőe Dorsey Dominguez Domínguez Donovan Garcia García Müller Mueller Smith Schmidt"
    " Johnson Jones Brown Nguyễn Nguyen Trần Lê Phạm Martínez Martinez Rodríguez López González"
    " Pérez Sánchez Ramírez Torres Flores Rivera Gómez Díaz Cruz Morales Ortiz Gutiérrez Chávez"
    " Ramos Ruiz Álvarez Mendoza Castillo Jiménez Moreno Romero Herrera Medina Aguilar Vargas"
    " Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak"
    " Dąbrowski O'Brien O'Connor Murphy Kelly Walsh Byrne Ryan Lefèvre Lefebvre Dupont Durand"
    " Leroy Moreau Simon Laurent Bernard Petit Dubois Fontaine Rousseau Vincent"
    " Müller-Lüdenscheidt Schäfer Schröder Köhler Größe Weiß Hoffmann Becker Wagner Fischer Meyer"
    " Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng"
    " Liang Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim Sato Suzuki Takahashi Tanaka Watanabe"
    " Itō Yamamoto Nakamura Kobayashi Katō Patel Shah Singh Kumar Sharma Gupta Khan Ali Ahmed"
    " Hussain Öztürk Yılmaz Kaya Demir Şahin Çelik Yıldız Aydın Doğan Arslan Andersson Johansson"
    " Karlsson Nilsson Eriksson Larsson Olsen Hansen Jensen Nielsen Pedersen Jørgensen Søndergaard"
    " Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novák Svoboda Dvořák Černý"
    " Procházka Kučera Horváth Nagy Kovács Tóth Szabó Papadopoulos Rossi Russo Ferrari Esposito"
    " Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti De Luca Costa"
).split()
AREAS = (212, 415, 617, 312, 646)


def patient_row(i: int, pick: random.Random) -> tuple[Any, ...]:
    first = pick.choice(FIRST)
    # Zipf-like: a few surnames are shared by many, most by few.
    if pick.random() < 0.5:
        last = SURNAMES[min(int(pick.paretovariate(1.1)) - 1, len(SURNAMES) - 1)]
    else:
        last = pick.choice(SURNAMES)
    name = f"{first} {last}" if pick.random() < 0.8 else f"{first} {pick.choice(FIRST)} {last}"
    email = f"{'.'.join(name_words(name))}.{i}@example.com"
    area, rest = AREAS[i % len(AREAS)], i // len(AREAS)
    exchange, line = 200 + (rest // 10_000) % 800, rest % 10_000
    created = START + SPAN * (i / 1_000_000)
    updated = created + timedelta(days=pick.randrange(30)) if pick.random() < 0.2 else created
    phone = f"({area}) {exchange}-{line:04d}"
    return (name, _prefixes(name), email, email, phone, f"+1{area}{exchange}{line:04d}", 1, created, updated)


@functools.cache
def _prefixes(name: str) -> str:
    return name_prefixes_json(name)


def patient_rows(count: int) -> Iterator[tuple[Any, ...]]:
    pick = random.Random(2026)  # noqa: S311 - sample data, reproducible
    for i in range(count):
        yield patient_row(i, pick)


# --- throwaway databases -------------------------------------------------------------------------


@contextmanager
def sqlite_database(rows: int) -> Iterator[str]:
    from chalicelib.storage.migrate import upgrade_database

    with tempfile.TemporaryDirectory(prefix="bench-search-") as directory:
        path = Path(directory) / "bench.db"
        upgrade_database(f"sqlite:///{path}")
        load_sqlite(path, rows)
        yield f"sqlite:///{path}"


def load_sqlite(path: Path, rows: int) -> None:
    """One transaction of executemany; the triggers fill patient_name_prefixes as the API's writes do."""
    connection = sqlite3.connect(path, isolation_level=None)
    statement = f"INSERT INTO patients ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    started = time.perf_counter()
    connection.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    with tqdm(total=rows, unit=" rows", desc="SQLite load", file=sys.stderr) as progress:
        for row in patient_rows(rows):
            batch.append((*row[:7], row[7].isoformat(" "), row[8].isoformat(" ")))
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
def postgres_database(rows: int) -> Iterator[tuple[str, str]]:
    """The database's SQLAlchemy URL and its libpq URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    from chalicelib.config.settings import normalize_database_url
    from chalicelib.storage.migrate import upgrade_database

    with postgres_server() as server_url:
        name = f"bench_search_{uuid.uuid4().hex[:12]}"
        admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(server_url).set(database=name)
            upgrade_database(url.render_as_string(hide_password=False))
            libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
            load_postgres(libpq, rows)
            yield normalize_database_url(url.render_as_string(hide_password=False)), libpq
        finally:
            from chalicelib.bootstrap import reset_for_tests

            reset_for_tests()
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_postgres(libpq_url: str, rows: int) -> None:
    """COPY the patients with the insert trigger off, COPY their prefixes, then build the key.

    The same rows the trigger would write, an order of magnitude faster than a trigger per row
    and an index grown row by row; a throwaway database, so nothing else writes meanwhile.
    """
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(libpq_url) as connection:
        connection.execute("ALTER TABLE patients DISABLE TRIGGER patient_name_prefixes_on_insert")
        connection.execute("ALTER TABLE patient_name_prefixes DROP CONSTRAINT pk_patient_name_prefixes")
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
        with connection.cursor() as cursor:
            source = cursor.execute("SELECT id, name_prefixes FROM patients ORDER BY id").fetchall()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY patient_name_prefixes (prefix, patient_id) FROM STDIN") as copy,
        ):
            for patient_id, prefixes in tqdm(source, unit=" rows", desc="prefixes COPY", file=sys.stderr):
                for prefix in json.loads(prefixes):
                    copy.write_row((prefix, patient_id))
        connection.execute(
            "ALTER TABLE patient_name_prefixes"
            " ADD CONSTRAINT pk_patient_name_prefixes PRIMARY KEY (prefix, patient_id)"
        )
        connection.execute("ALTER TABLE patients ENABLE TRIGGER patient_name_prefixes_on_insert")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE patients")
        connection.execute("VACUUM ANALYZE patient_name_prefixes")
    print(f"PostgreSQL: loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)


# --- what is searched for ------------------------------------------------------------------------


def two_word_queries(client: Any, pick: random.Random, count: int = 40) -> list[str]:
    """Two-word prefixes ("jo do") of loaded names that fill a page of 20."""
    found: list[str] = []
    while len(found) < count:
        first, last = pick.choice(FIRST), pick.choice(SURNAMES[:60])
        query = f"{first[:2]} {last[:2]}"
        body = {"name": query, "per_page": 20}
        answer = client.http.post("/patients/search", headers=JSON_AUTH, body=json.dumps(body)).json_body
        if len(answer["patients"]) == 20:
            found.append(query)
    return found


JSON_AUTH = {**AUTH, "Content-Type": "application/json"}


def timed(request: Callable[[int], Any], requests: int) -> list[float]:
    for n in range(5):  # warm the engine's pool and the database's cache
        request(n)
    samples = []
    for n in range(requests):
        started = time.perf_counter()
        response = request(n)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"bench request answered {response.status_code}: {response.body[:200]!r}")
    return samples


def run_cases(client: Any, rows: int, requests: int) -> list[tuple[str, list[float]]]:
    pick = random.Random(7)  # noqa: S311 - spreads reads over the table, not a secret
    known = [
        client.http.get(f"/patients/{pick.randint(1, rows)}", headers=AUTH).json_body for _ in range(100)
    ]
    names = two_word_queries(client, pick)
    end = START + SPAN * (rows / 1_000_000)
    recent = (end - timedelta(hours=6)).isoformat() + "Z"
    month = (end - timedelta(days=30)).isoformat() + "Z"

    def search(body: Callable[[int], dict[str, Any]]) -> Callable[[int], Any]:
        return lambda n: client.http.post("/patients/search", headers=JSON_AUTH, body=json.dumps(body(n)))

    def digits_only(phone: str) -> str:
        return "".join(ch for ch in phone if ch.isdigit())

    cases: list[tuple[str, Callable[[int], Any]]] = [
        ("email (exact, another case)", search(lambda n: {"email": known[n % 100]["email"].upper()})),
        ("phone (exact, digits only)", search(lambda n: {"phone": digits_only(known[n % 100]["phone"])})),
        ("name, two-word prefix, page of 20", search(lambda n: {"name": names[n % len(names)]})),
        ("name, one surname (Garcia)", search(lambda n: {"name": "garcia"})),
        (
            "name + created_since",
            search(lambda n: {"name": names[n % len(names)], "created_since": "2024-06-01"}),
        ),
        ("created_since (last 6 hours)", search(lambda n: {"created_since": recent})),
        ("updated_since (last 6 hours)", search(lambda n: {"updated_since": recent})),
        ("created_since (last 30 days)", search(lambda n: {"created_since": month})),
    ]
    return [(name, timed(request, requests)) for name, request in cases]


def report(title: str, results: list[tuple[str, list[float]]]) -> None:
    print(f"\n{title}")
    print(f"  {'case':<40} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8}")
    for name, samples in results:
        p50 = statistics.median(samples)
        p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
        print(f"  {name:<40} {p50:>8.2f} {p99:>8.2f} {p99 / p50:>8.2f}")


# --- PostgreSQL: the prefix table against pg_trgm, in SQL alone -------------------------------------

PREFIX_QUERY = """
SELECT p.id FROM patients p
JOIN patient_name_prefixes a ON a.patient_id = p.id AND a.prefix = %(first)s
JOIN patient_name_prefixes b ON b.patient_id = p.id AND b.prefix = %(second)s
WHERE p.id > 0 ORDER BY p.id LIMIT 21
"""
TRIGRAM_QUERY = """
SELECT id FROM patients WHERE name_key LIKE %(first_like)s AND name_key LIKE %(second_like)s
AND id > 0 ORDER BY id LIMIT 21
"""


def compare_indexes(libpq_url: str, queries: list[str], requests: int) -> None:
    import psycopg

    with psycopg.connect(libpq_url, autocommit=True) as connection:
        started = time.perf_counter()
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        connection.execute("ALTER TABLE patients ADD COLUMN name_key text")
        # The normalized words, each after a space: '% jo%' then matches a word start.
        words = connection.execute("SELECT id, name FROM patients").fetchall()
        connection.execute("CREATE TEMP TABLE name_keys (id bigint, name_key text)")
        with connection.cursor() as cursor, cursor.copy("COPY name_keys (id, name_key) FROM STDIN") as copy:
            for patient_id, name in words:
                copy.write_row((patient_id, " " + " ".join(name_words(name))))
        connection.execute("UPDATE patients p SET name_key = k.name_key FROM name_keys k WHERE k.id = p.id")
        column_seconds = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute(
            "CREATE INDEX ix_patients_name_key_trgm ON patients USING gin (name_key gin_trgm_ops)"
        )
        gin_seconds = time.perf_counter() - started
        connection.execute("VACUUM ANALYZE patients")

        def run(sql: str, params: Callable[[str], dict[str, str]]) -> list[float]:
            samples = []
            for n in range(requests + 5):
                started = time.perf_counter()
                connection.execute(sql, params(queries[n % len(queries)])).fetchall()
                if n >= 5:
                    samples.append((time.perf_counter() - started) * 1000)
            return samples

        def prefix_params(query: str) -> dict[str, str]:
            first, second = name_words(query)
            return {"first": first, "second": second}

        def trigram_params(query: str) -> dict[str, str]:
            first, second = name_words(query)
            return {"first_like": f"% {first}%", "second_like": f"% {second}%"}

        results = [
            ("prefix table (chosen)", run(PREFIX_QUERY, prefix_params)),
            ("pg_trgm GIN on name_key", run(TRIGRAM_QUERY, trigram_params)),
        ]
        report(
            f"PostgreSQL, the name query alone in SQL ({len(queries)} two-word prefixes, page of 20)", results
        )
        sizes = connection.execute(
            "SELECT pg_size_pretty(pg_relation_size('patient_name_prefixes')),"
            " pg_size_pretty(pg_relation_size('pk_patient_name_prefixes')),"
            " pg_size_pretty(pg_relation_size('ix_patients_name_key_trgm')),"
            " pg_size_pretty(pg_relation_size('ix_patients_phone_e164')),"
            " pg_size_pretty(pg_relation_size('ix_patients_created_at')),"
            " pg_size_pretty(pg_relation_size('ix_patients_updated_at')),"
            " pg_size_pretty(pg_relation_size('patients')),"
            " (SELECT count(*) FROM patient_name_prefixes)"
        ).fetchone()
        assert sizes is not None
        print("\nPostgreSQL sizes")
        print(f"  patient_name_prefixes table {sizes[0]} ({sizes[7]:,} rows), its key {sizes[1]}")
        print(
            f"  pg_trgm GIN on name_key {sizes[2]} (built in {gin_seconds:.1f} s;"
            f" column filled in {column_seconds:.1f} s)"
        )
        print(
            f"  ix_patients_phone_e164 {sizes[3]}, ix_patients_created_at {sizes[4]},"
            f" ix_patients_updated_at {sizes[5]}"
        )
        print(f"  patients table {sizes[6]}")
        for label, sql, params in (
            ("prefix table", PREFIX_QUERY, prefix_params(queries[0])),
            ("pg_trgm", TRIGRAM_QUERY, trigram_params(queries[0])),
        ):
            plan = connection.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
            print(f"\n  plan, {label}, {queries[0]!r}:")
            for (line,) in plan:
                print(f"    {line}")


def main() -> None:
    # The access line of every request would be timed with it (and fill the terminal).
    os.environ["LOG_LEVEL"] = "WARNING"
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="patients on PostgreSQL")
    parser.add_argument("--sqlite-rows", type=int, default=100_000, help="patients on SQLite")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per case")
    parser.add_argument(
        "--databases", nargs="+", choices=("postgresql", "sqlite"), default=["postgresql", "sqlite"]
    )
    args = parser.parse_args()

    if "postgresql" in args.databases:
        with postgres_database(args.rows) as (url, libpq):
            client = point_app_at(url)
            results = run_cases(client, args.rows, args.requests)
            report(
                f"PostgreSQL: {args.rows:,} patients, POST /patients/search through the app,"
                f" {args.requests} requests per case",
                results,
            )
            queries = two_word_queries(client, random.Random(11))
            compare_indexes(libpq, queries, args.requests)
    if "sqlite" in args.databases:
        with sqlite_database(args.sqlite_rows) as url:
            client = point_app_at(url)
            results = run_cases(client, args.sqlite_rows, args.requests)
            report(
                f"SQLite: {args.sqlite_rows:,} patients, POST /patients/search through the app,"
                f" {args.requests} requests per case",
                results,
            )


if __name__ == "__main__":
    main()
