"""``make bench-fhir``: a warm FHIR read against a warm JSON read of the same patients.

Runs the app in-process (chalice.test.Client: routing, authorizer, handler,
service, database, audit row) and alternates, request by request, between
``GET /fhir/Patient/{id}`` (Accept: application/fhir+json) and ``GET /patients/{id}``
over the same patients, so both see the same load of a shared machine. Prints
median and p99 of each, and the ratio of the medians (target: FHIR <= 1.15x JSON).
Cold starts are ``make bench-cold-start``'s. Nothing is asserted: it prints figures.

    python -m bench.fhir_reads [--requests 2000] [--databases sqlite postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.audit_overhead import p99
from bench.patient_lists import AUTH, point_app_at, postgres_database, sqlite_database

JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
FHIR_AUTH = {**AUTH, "Accept": "application/fhir+json"}
PATIENTS = 100
TARGET_RATIO = 1.15


def create_patients(client: Any) -> list[int]:
    ids = []
    for i in range(PATIENTS):
        patient = {"name": f"Bench {i}", "email": f"fhir.{i}@example.com", "phone": "+1 415 555 0100"}
        body = json.dumps(patient)
        response = client.http.post("/patients", headers=JSON_AUTH, body=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST /patients answered {response.status_code}: {response.body[:200]!r}")
        ids.append(response.json_body["patient"]["id"])
    return ids


def alternate(client: Any, ids: list[int], requests: int) -> tuple[list[float], list[float]]:
    """``requests`` FHIR reads and as many JSON reads, interleaved; ms each."""
    reads: dict[str, Callable[[int], Any]] = {
        "fhir": lambda i: client.http.get(f"/fhir/Patient/{ids[i % PATIENTS]}", headers=FHIR_AUTH),
        "json": lambda i: client.http.get(f"/patients/{ids[i % PATIENTS]}", headers=AUTH),
    }
    samples: dict[str, list[float]] = {"fhir": [], "json": []}
    for i in range(2 * requests):
        face = "fhir" if i % 2 == 0 else "json"
        started = time.perf_counter()
        response = reads[face](i // 2)
        samples[face].append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{face} read answered {response.status_code}: {response.body[:200]!r}")
    return samples["fhir"], samples["json"]


def run(database_url: str, requests: int) -> tuple[list[float], list[float]]:
    client = point_app_at(database_url)
    ids = create_patients(client)
    alternate(client, ids, 20)  # warm: the FHIR code's first load, the pool, the database's cache
    return alternate(client, ids, requests)


def report(database: str, fhir: list[float], plain: list[float]) -> None:
    ratio = statistics.median(fhir) / statistics.median(plain)
    print(f"\n{database}: ms per warm read by id, {len(fhir)} each, interleaved (median / p99)")
    print(f"  GET /fhir/Patient/{{id}}   {statistics.median(fhir):6.2f} / {p99(fhir):6.2f}")
    print(f"  GET /patients/{{id}}       {statistics.median(plain):6.2f} / {p99(plain):6.2f}")
    print(f"  FHIR / JSON, medians     {ratio:6.2f}x (target <= {TARGET_RATIO}x)")
    print(f"  FHIR / JSON, p99         {p99(fhir) / p99(plain):6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="reads of each face")
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    # Both faces log and count alike; a line per request to the terminal would be most of what is timed.
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("METRICS", "off")
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    for database in args.databases:
        with databases[database](0) as url:
            report(database, *run(url, args.requests))


if __name__ == "__main__":
    main()
