"""``make bench-disclosures``: what the accounting of disclosures adds to a list page (SQLite, PostgreSQL).

Runs the app in-process (chalice.test.Client: routing, authorizer, handler,
service, database) over a database of ``--patients`` patients and lists a page of
``--per-page`` of them, alternating request by request between the app as it is
(the page's audit row and one disclosure row per patient shown) and the same app
writing no disclosure (the same statement, the same audit row, no patient
named). Both halves therefore run under the same load of a shared machine.
Prints median and p99 of each half per database, the difference of the medians,
and the disclosure rows one page wrote. Times are printed, never checked.

    python -m bench.disclosures [--requests 1000] [--per-page 100] [--databases sqlite postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from bench.audit_overhead import p99
from bench.patient_lists import AUTH, point_app_at, postgres_database, sqlite_database


@contextmanager
def disclosures_switched_off() -> Iterator[None]:
    """Every recorded read names no patient: ``shown=0`` (its audit row is written as before)."""
    import chalicelib.service_layer.unit_of_work as unit_of_work

    read_disclosing = unit_of_work.read_disclosing

    def disclosing_nobody(*args: Any, **options: Any) -> Any:
        return read_disclosing(*args, **{**options, "shown": 0})

    unit_of_work.read_disclosing = disclosing_nobody  # type: ignore[assignment]
    try:
        yield
    finally:
        unit_of_work.read_disclosing = read_disclosing


def alternate(request: Callable[[], Any], requests: int) -> tuple[list[float], list[float]]:
    """Time ``requests`` pages with disclosures and as many without, interleaved."""
    disclosing: list[float] = []
    not_disclosing: list[float] = []
    for i in range(2 * requests):
        switched_off = i % 2 == 1
        with disclosures_switched_off() if switched_off else nullcontext():
            started = time.perf_counter()
            response = request()
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"bench request answered {response.status_code}: {response.body[:200]!r}")
        (not_disclosing if switched_off else disclosing).append(elapsed)
    return disclosing, not_disclosing


def disclosure_rows() -> int:
    from sqlalchemy import func, select

    from chalicelib.storage.database import get_engine
    from chalicelib.storage.models import AuditDisclosure

    with get_engine().connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(AuditDisclosure)) or 0)


def run(client: Any, requests: int, per_page: int) -> tuple[list[float], list[float], int]:
    def page() -> Any:
        return client.http.get(f"/patients?per_page={per_page}", headers=AUTH)

    alternate(page, 10)  # warm the engine's pool, the statement cache and the database's cache
    before = disclosure_rows()
    page()
    written = disclosure_rows() - before
    return (*alternate(page, requests), written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per half")
    parser.add_argument("--per-page", type=int, default=100, help="patients per page (at most 100)")
    parser.add_argument("--patients", type=int, default=1000, help="patients in the database")
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    # The access line and metric line of each request would drown the figures.
    os.environ.update(LOG_LEVEL="WARNING", METRICS="off")
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    print(f"GET /patients?per_page={args.per_page}: ms per request (median / p99), {args.requests} each")
    print(
        f"{'database':12} {'with disclosures':>18} {'without':>16} {'disclosures add':>16} {'rows/page':>10}"
    )
    for database in args.databases:
        with databases[database](args.patients) as url:
            disclosing, not_disclosing, written = run(point_app_at(url), args.requests, args.per_page)
        with_, without = statistics.median(disclosing), statistics.median(not_disclosing)
        print(
            f"{database:12} {with_:9.3f} / {p99(disclosing):6.2f} {without:7.3f} / {p99(not_disclosing):6.2f}"
            f" {with_ - without:+16.3f} {written:10d}"
        )


if __name__ == "__main__":
    main()
