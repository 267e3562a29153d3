"""``make bench-baseline``, concurrent PostgreSQL part: ours against the seed with K processes at once.

Each side gets a throwaway database of its own on one PostgreSQL server
(TEST_POSTGRES_URL, or an embedded one) and enqueues to one throwaway Valkey
(Redis). K worker processes per side each serve one request at a time, as
Lambda containers do: the seed (Flask + Flask-SQLAlchemy, ``bench.seed_baseline``)
behind apig-wsgi, the usual WSGI-to-Lambda adapter, its create sending a Celery
task by name after the commit; ours as Lambda calls it, ``app(event, context)``
with the authorizer's cached context. Each side's containers start once (as many
as the largest K) and warm up; at each K the first K of them start together:
``--creates`` creates each, then (after all K finished creating) ``--reads``
reads each of the ids it created. Throughput is requests over the span from the
first start to the last finish; p50 is over every request of the phase.

The sides alternate, K by K, and which goes first alternates by round, so a
shared machine's load falls on both alike. ``--repeat N`` runs N rounds and
prints each round's ratios and, per K and operation, the median with the range.

    python -m bench.seed_concurrent [--processes 1 2 4] [--creates-only 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import multiprocessing
import os
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from bench.seed_baseline import ChaliceLambdaInvoke, SeedInLambda, build_seed_app

SIDES = ("seed", "ours")
OPERATIONS = ("create", "read")
SEED_TASK = "seed.send_notification"
WARM_UP = 5


# --- throwaway servers and databases ------------------------------------------------------------


@contextmanager
def postgres_databases(names: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """A fresh database per name on one server, dropped after; yields SQLAlchemy URLs by name."""
    import psycopg
    from sqlalchemy.engine import make_url

    from bench.patient_lists import postgres_server

    with postgres_server() as server_url:
        admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
        created = {name: f"bench_seed_concurrent_{name}_{uuid.uuid4().hex[:8]}" for name in names}
        with psycopg.connect(admin, autocommit=True) as connection:
            for database in created.values():
                connection.execute(f'CREATE DATABASE "{database}"')
        try:
            yield {
                name: make_url(server_url).set(database=database).render_as_string(hide_password=False)
                for name, database in created.items()
            }
        finally:
            with psycopg.connect(admin, autocommit=True) as connection:
                for database in created.values():
                    connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextmanager
def redis_server() -> Iterator[str]:
    """A Valkey of the bench's own: the enqueued tasks have no consumer and vanish with it."""
    from scripts.embedded_services import start_embedded_redis

    with tempfile.TemporaryDirectory(prefix="bench-valkey-") as directory:
        server = start_embedded_redis(Path(directory))
        try:
            yield str(server.connection_url)
        finally:
            server.stop()


def prepare_databases(urls: dict[str, str]) -> None:
    from chalicelib.storage.migrate import upgrade_database

    build_seed_app(urls["seed"])  # create_all, as the seed's users run it
    upgrade_database(urls["ours"])


# --- one worker process: one "Lambda container" ----------------------------------------------------


class SeedLambda(SeedInLambda):
    def __init__(self, database_url: str, redis_url: str) -> None:
        super().__init__(build_seed_app(database_url, redis_url=redis_url))


class OursLambda(ChaliceLambdaInvoke):
    def __init__(self, database_url: str, redis_url: str) -> None:
        super().__init__(database_url, REDIS_URL=redis_url)


def serve(
    side: str,
    number: int,
    urls: dict[str, str],
    redis_url: str,
    barriers: dict[int, Barrier],
    commands: Any,
    results: Any,
) -> None:
    """One container: warm up, then for each command (K, counts) it is one of K containers that
    create, then read what they created, each phase started together. ``None`` ends it."""
    import json

    # Access lines are still built and written, as Lambda's are, but not onto the bench's report.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    app = (SeedLambda if side == "seed" else OursLambda)(urls[side], redis_url)
    tag = uuid.uuid4().hex[:8]
    created = itertools.count()

    def create() -> int:
        i = next(created)
        status, body = app.call("POST", "/patients", {"name": f"P {i}", "email": f"{tag}-{i}@example.com"})
        if status != 201:
            raise SystemExit(f"{side}: create answered {status}")
        return int(json.loads(body)["patient"]["id"])

    for _ in range(WARM_UP):
        app.call("GET", f"/patients/{create()}", None)
    results.put("ready")
    while (command := commands.get()) is not None:
        processes, counts = command
        outcome: dict[str, Any] = {}
        ids: list[int] = []
        for operation in OPERATIONS:
            order = random.Random(number).sample(ids, len(ids))  # noqa: S311 - not a secret
            latencies = []
            barriers[processes].wait()
            began = time.perf_counter()
            for i in range(counts[operation]):
                t0 = time.perf_counter()
                if operation == "create":
                    ids.append(create())
                else:
                    status, _ = app.call("GET", f"/patients/{order[i % len(order)]}", None)
                    if status != 200:
                        raise SystemExit(f"{side}: read answered {status}")
                latencies.append(time.perf_counter() - t0)
            outcome[operation] = (began, time.perf_counter(), latencies)
        results.put(outcome)


# --- the runs -------------------------------------------------------------------------------------


class Containers:
    """One side's worker processes, started once for the whole bench and reused at every K."""

    def __init__(self, side: str, count: int, urls: dict[str, str], redis_url: str, ks: set[int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.side = side
        barriers = {k: context.Barrier(k) for k in ks}
        self._results = context.Queue()
        self._commands = [context.Queue() for _ in range(count)]
        self._workers = [
            context.Process(
                target=serve,
                args=(side, number, urls, redis_url, barriers, self._commands[number], self._results),
            )
            for number in range(count)
        ]
        for worker in self._workers:
            worker.start()
        self._collect(count)

    def run(self, processes: int, counts: dict[str, int]) -> dict[str, tuple[float, float]]:
        """The first K containers at once; per operation (requests/s, p50 ms)."""
        for commands in self._commands[:processes]:
            commands.put((processes, counts))
        outcomes = self._collect(processes)
        figures = {}
        for operation in (op for op in OPERATIONS if counts[op]):
            spans = [outcome[operation] for outcome in outcomes]
            elapsed = max(span[1] for span in spans) - min(span[0] for span in spans)
            latencies = [latency for span in spans for latency in span[2]]
            figures[operation] = (len(latencies) / elapsed, statistics.median(latencies) * 1000)
        return figures

    def _collect(self, count: int) -> list[Any]:
        answers: list[Any] = []
        while len(answers) < count:
            try:
                answers.append(self._results.get(timeout=5))
            except queue.Empty:
                if any(worker.exitcode not in (None, 0) for worker in self._workers):
                    self.stop()
                    raise SystemExit(f"a {self.side} worker failed") from None
        return answers

    def stop(self) -> None:
        for commands in self._commands:
            commands.put(None)
        for worker in self._workers:
            worker.join(timeout=10)
            if worker.exitcode is None:
                worker.kill()


class WaitSampler:
    """Samples, every 10 ms, what the side's busy backends wait on (pg_stat_activity):
    a row lock (``Lock``: the queue a hot row makes), the WAL flush (``IO``/``LWLock`` on WAL),
    or nothing (working, or waiting for its client)."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        self._database = url.database
        self._libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.waits: collections.Counter[str] = collections.Counter()

    def __enter__(self) -> WaitSampler:
        self._done = threading.Event()
        self._failure = None
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    def _sample(self) -> None:
        try:
            self._sample_until_done()
        except Exception as error:  # reported by __exit__, in the bench's thread
            self._failure: Exception | None = error

    def _sample_until_done(self) -> None:
        import psycopg

        query = (
            "SELECT CASE WHEN wait_event_type = 'Lock' THEN 'row lock'"
            " WHEN wait_event LIKE 'WAL%%' THEN 'WAL flush' ELSE 'other' END, count(*)"
            " FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()"
            " GROUP BY 1"
        )
        with psycopg.connect(self._libpq, autocommit=True) as connection:
            while not self._done.wait(0.01):
                for kind, count in connection.execute(query, (self._database,)).fetchall():
                    self.waits[kind] += count

    def shares(self) -> str:
        total = sum(self.waits.values()) or 1
        return ", ".join(f"{kind} {self.waits[kind] / total:4.0%}" for kind in ("row lock", "WAL flush"))


Figures = dict[tuple[int, str], dict[str, tuple[float, float]]]


def run_round(
    number: int,
    plan: list[tuple[int, dict[str, int]]],
    containers: dict[str, Containers],
    urls: dict[str, str],
) -> tuple[Figures, dict[int, dict[str, str]]]:
    """Both sides at each K of the plan; which side goes first alternates by round. Also, per K
    and side, the share of busy-backend samples waiting on a row lock and on the WAL flush."""
    sides = SIDES if number % 2 == 0 else SIDES[::-1]
    figures: Figures = {}
    waits: dict[int, dict[str, str]] = {}
    for processes, counts in plan:
        by_side = {}
        for side in sides:
            with WaitSampler(urls[side]) as sampler:
                by_side[side] = containers[side].run(processes, counts)
            waits.setdefault(processes, {})[side] = sampler.shares()
        for operation in OPERATIONS:
            if counts[operation]:
                figures[processes, operation] = {side: by_side[side][operation] for side in SIDES}
    return figures, waits


def report_round(number: int, figures: Figures, waits: dict[int, dict[str, str]]) -> None:
    print(f"\nround {number + 1}")
    seed, ours = f"{'seed req/s':>11} {'p50 ms':>7}", f"{'ours req/s':>11} {'p50 ms':>7}"
    print(f"  {'K':>2} {'operation':10} {seed} {ours} {'throughput':>10} {'p50':>6}")
    for (processes, operation), sides in figures.items():
        (seed_rate, seed_p50), (ours_rate, ours_p50) = sides["seed"], sides["ours"]
        print(
            f"  {processes:>2} {operation:10} {seed_rate:11.0f} {seed_p50:7.2f} {ours_rate:11.0f}"
            f" {ours_p50:7.2f} {ours_rate / seed_rate:9.2f}x {ours_p50 / seed_p50:5.2f}x"
        )
    print("  busy database backends waiting (share of samples):")
    for processes, by_side in waits.items():
        print(f"  {processes:>2} seed: {by_side['seed']}; ours: {by_side['ours']}")


def report_spread(rounds: list[Figures]) -> None:
    print(f"\nours / seed over {len(rounds)} round(s): median [lowest - highest]")
    print(f"  {'K':>2} {'operation':10} {'throughput':>24} {'p50 latency':>24}")
    for key in rounds[0]:
        rates = sorted(r[key]["ours"][0] / r[key]["seed"][0] for r in rounds)
        p50s = sorted(r[key]["ours"][1] / r[key]["seed"][1] for r in rounds)
        print(f"  {key[0]:>2} {key[1]:10} {_spread(rates):>24} {_spread(p50s):>24}")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x [{values[0]:.2f}-{values[-1]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="K: creates and reads")
    parser.add_argument("--creates-only", type=int, nargs="*", default=[8], help="K: creates alone")
    parser.add_argument("--creates", type=int, default=150, help="creates per process")
    parser.add_argument("--reads", type=int, default=500, help="reads per process")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, for the spread")
    args = parser.parse_args()

    plan = [(k, {"create": args.creates, "read": args.reads}) for k in args.processes]
    plan += [(k, {"create": args.creates, "read": 0}) for k in args.creates_only]
    print(
        f"PostgreSQL, K processes each serving one request at a time; {args.creates} creates then"
        f" {args.reads} reads per process; {os.cpu_count()} CPUs, shared with the database server",
        flush=True,
    )
    with postgres_databases(SIDES) as urls, redis_server() as redis_url:
        prepare_databases(urls)
        ks = {k for k, _ in plan}
        containers = {side: Containers(side, max(ks), urls, redis_url, ks) for side in SIDES}
        try:
            rounds = []
            for number in range(args.repeat):
                figures, waits = run_round(number, plan, containers, urls)
                rounds.append(figures)
                report_round(number, figures, waits)
        finally:
            for side in containers.values():
                side.stop()
    report_spread(rounds)


if __name__ == "__main__":
    main()
