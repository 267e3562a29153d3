"""``make bench-audit``: what the audit trail adds to each request, on SQLite and PostgreSQL.

Runs the app in-process (chalice.test.Client: routing, authorizer, handler,
service, database) and alternates, request by request, between the app as it
is and the same app with the audit trail switched off in this process (the
route wrapper records nothing, units of work write no change rows, reads by id
and list pages only read). Both
halves therefore run under the same load of a shared machine. Prints median
and p99 of each half per case, and the difference of the medians.

    python -m bench.audit_overhead [--requests 1000] [--databases sqlite postgresql]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.patient_lists import AUTH, point_app_at, postgres_database, sqlite_database

JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
PATIENTS = 100


@contextmanager
def audit_switched_off() -> Iterator[None]:
    import chalicelib.http.routes
    import chalicelib.service_layer.unit_of_work
    from chalicelib.audit.recording import AuditContext
    from chalicelib.service_layer.unit_of_work import ReadTransaction

    wrapper, watch_patient_changes = (
        chalicelib.http.routes.call_audited,
        chalicelib.service_layer.unit_of_work.watch_patient_changes,
    )
    # Reads record themselves (their row and disclosures in their own statement): without a
    # context they only read, in one statement.
    disclosing = ReadTransaction.disclosing

    def unaudited(
        action: Any, handler: Any, request: Any, path_params: dict[str, str], scope: str | None = None
    ) -> Any:
        # The handler still takes a context; nothing writes its row.
        context = AuditContext(principal="bench", action=action, request_id=None)
        return chalicelib.http.routes.call_handler(handler, request, path_params, scope, {"audit": context})

    chalicelib.http.routes.call_audited = unaudited  # type: ignore[assignment]
    chalicelib.service_layer.unit_of_work.watch_patient_changes = lambda session, uow: None
    ReadTransaction.disclosing = lambda self, *, durable: disclosing(ReadTransaction(), durable=durable)  # type: ignore[method-assign]
    try:
        yield
    finally:
        ReadTransaction.disclosing = disclosing  # type: ignore[method-assign]
        chalicelib.http.routes.call_audited, chalicelib.service_layer.unit_of_work.watch_patient_changes = (
            wrapper,
            watch_patient_changes,
        )


def alternate(request: Callable[[int], Any], requests: int, expected: int) -> tuple[list[float], list[float]]:
    """Time ``requests`` calls with the audit trail and as many without, interleaved."""
    audited: list[float] = []
    unaudited: list[float] = []
    for i in range(2 * requests):
        switched_off = i % 2 == 1
        with audit_switched_off() if switched_off else _nothing():
            started = time.perf_counter()
            response = request(i)
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            raise RuntimeError(f"bench request answered {response.status_code}: {response.body[:200]!r}")
        (unaudited if switched_off else audited).append(elapsed)
    return audited, unaudited


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def run_cases(client: Any, requests: int) -> list[tuple[str, list[float], list[float]]]:
    ids = []
    for i in range(PATIENTS):
        body = json.dumps({"name": f"Bench {i}", "email": f"seed.{i}@example.com"})
        ids.append(client.http.post("/patients", headers=JSON_AUTH, body=body).json_body["patient"]["id"])

    def get_one(i: int) -> Any:
        return client.http.get(f"/patients/{ids[i % PATIENTS]}", headers=AUTH)

    def get_list(i: int) -> Any:
        return client.http.get("/patients?per_page=20", headers=AUTH)

    def update(i: int) -> Any:
        body = json.dumps({"name": f"Renamed {i}"})
        return client.http.put(f"/patients/{ids[i % PATIENTS]}", headers=JSON_AUTH, body=body)

    numbers = itertools.count()

    def create(i: int) -> Any:
        number = next(numbers)  # the warm-up creates too: every email is new
        body = json.dumps({"name": f"New {number}", "email": f"new.{number}@example.com"})
        return client.http.post("/patients", headers=JSON_AUTH, body=body)

    cases = [
        ("GET /patients/{id}", get_one, 200),
        ("GET /patients?per_page=20", get_list, 200),
        ("PUT /patients/{id}", update, 200),
        ("POST /patients", create, 201),
    ]
    for _, request, expected in cases:  # warm the engine's pool and the database's cache
        alternate(request, 5, expected)
    return [(name, *alternate(request, requests, expected)) for name, request, expected in cases]


def p99(samples: list[float]) -> float:
    return sorted(samples)[max(0, int(len(samples) * 0.99) - 1)]


def report(database: str, results: list[tuple[str, list[float], list[float]]]) -> None:
    print(f"\n{database}: ms per request (median / p99)")
    print(f"{'case':28} {'with audit':>16} {'without':>16} {'audit adds':>11}")
    for name, audited, unaudited in results:
        with_audit, without = statistics.median(audited), statistics.median(unaudited)
        print(
            f"{name:28} {with_audit:7.2f} / {p99(audited):6.2f} {without:7.2f} / {p99(unaudited):6.2f}"
            f" {with_audit - without:+10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per case and per half")
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    for database in args.databases:
        with databases[database](0) as url:
            report(database, run_cases(point_app_at(url), args.requests))


if __name__ == "__main__":
    main()
