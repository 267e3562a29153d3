"""``make bench-local``: GET /patients/{id} through stock ``chalice local`` and ``scripts.local_api``.

Both servers run side by side on loopback over one temporary SQLite database
holding one patient. Each client kind runs until it has made ``--requests``
requests or ``--seconds`` have passed, whichever comes first, and the table
shows requests per second and p50/p99 latency seen by the client.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.storage.migrate import upgrade_database
from scripts.api_process import HOST, free_port, keep_alive_command, running_server, stock_chalice_command

TOKEN = "bench-token"  # a throwaway token for throwaway servers
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
PATIENT = {"name": "Bench Patient", "email": "bench@example.com", "phone": "+1 415 555 0100"}
TARGET_P50_MS = 2.0
TARGET_SPEEDUP = 20.0


@dataclass(frozen=True)
class Budget:
    requests: int
    seconds: float


@dataclass(frozen=True)
class CaseResult:
    server: str
    client: str
    requests: int
    elapsed: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed

    def percentile_ms(self, percent: float) -> float:
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


def timed_get(connection: http.client.HTTPConnection, path: str) -> float:
    started = time.perf_counter()
    connection.request("GET", path, headers=HEADERS)
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return elapsed


def run_keep_alive(port: int, path: str, budget: Budget, deadline: float) -> list[float]:
    latencies = []
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    with contextlib.closing(connection):
        while len(latencies) < budget.requests and time.perf_counter() < deadline:
            latencies.append(timed_get(connection, path))
    return latencies


def run_new_connections(port: int, path: str, budget: Budget, deadline: float) -> list[float]:
    latencies = []
    while len(latencies) < budget.requests and time.perf_counter() < deadline:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        with contextlib.closing(connection):
            timed_get(connection, path)
        latencies.append(time.perf_counter() - started)  # connecting included
    return latencies


def run_threads(threads: int) -> Callable[[int, str, Budget, float], list[float]]:
    def run(port: int, path: str, budget: Budget, deadline: float) -> list[float]:
        share = Budget(math.ceil(budget.requests / threads), budget.seconds)
        results: list[list[float]] = [[] for _ in range(threads)]

        def client(index: int) -> None:
            results[index] = run_keep_alive(port, path, share, deadline)

        workers = [threading.Thread(target=client, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return [latency for result in results for latency in result]

    return run


def measure(server: str, port: int, path: str, budget: Budget, threads: int) -> list[CaseResult]:
    cases = (
        ("keep-alive, sequential", run_keep_alive),
        ("new connection each", run_new_connections),
        (f"keep-alive, {threads} threads", run_threads(threads)),
    )
    results = []
    for client, run in cases:
        run(port, path, Budget(20, 5), time.perf_counter() + 5)  # warm up: imports, engine, first query
        started = time.perf_counter()
        latencies = run(port, path, budget, started + budget.seconds)
        elapsed = time.perf_counter() - started
        results.append(CaseResult(server, client, len(latencies), elapsed, latencies))
    return results


def create_patient(port: int) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    with contextlib.closing(connection):
        headers = {**HEADERS, "Content-Type": "application/json"}
        connection.request("POST", "/patients", body=json.dumps(PATIENT), headers=headers)
        response = connection.getresponse()
        body = response.read()
    if response.status != 201:
        raise RuntimeError(f"creating the bench patient answered {response.status}: {body!r}")
    return int(json.loads(body)["patient"]["id"])


def print_table(results: list[CaseResult], budget: Budget) -> None:
    limit = f"{budget.requests:,} requests or {budget.seconds:g} s per case"
    print(f"\nGET /patients/{{id}}, SQLite, loopback; {limit}")
    print(f"{'server':<20} {'client':<24} {'requests':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r.server:<20} {r.client:<24} {r.requests:>8,} {r.rate:>9,.0f} "
            f"{r.percentile_ms(50):>8.2f} {r.percentile_ms(99):>8.2f}"
        )


def print_targets(stock: CaseResult, launcher: CaseResult) -> None:
    p50 = launcher.percentile_ms(50)
    speedup = launcher.rate / stock.rate
    p50_verdict = "met" if p50 < TARGET_P50_MS else "MISSED"
    speedup_verdict = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
    print(f"\nkeep-alive p50: {p50:.2f} ms (target < {TARGET_P50_MS:g} ms: {p50_verdict})")
    target = f"target >= {TARGET_SPEEDUP:g}x: {speedup_verdict}"
    print(f"keep-alive rate: {speedup:.0f}x stock chalice local ({target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="most requests per case")
    parser.add_argument("--seconds", type=float, default=10.0, help="longest time per case")
    parser.add_argument("--threads", type=int, default=4, help="keep-alive client threads")
    options = parser.parse_args()
    budget = Budget(options.requests, options.seconds)

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        work = Path(tmp)
        database_url = f"sqlite:///{work / 'telehealth.db'}"
        upgrade_database(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "API_TOKENS": f"bench:{TOKEN}"}
        servers = (
            ("chalice local", stock_chalice_command),
            ("scripts.local_api", keep_alive_command),
        )
        results = []
        with contextlib.ExitStack() as stack:
            ports = {}
            for name, command in servers:
                port = free_port()
                log_path = work / f"{name.replace(' ', '-')}.log"
                stack.enter_context(running_server(command(port), port, env, log_path))
                ports[name] = port
            path = f"/patients/{create_patient(ports['scripts.local_api'])}"
            for name, _ in servers:
                print(f"measuring {name} ...", flush=True)
                results += measure(name, ports[name], path, budget, options.threads)

    print_table(results, budget)
    sequential = {r.server: r for r in results if r.client == "keep-alive, sequential"}
    print_targets(sequential["chalice local"], sequential["scripts.local_api"])


if __name__ == "__main__":
    main()
