"""Notification throughput and latency, from the patient change's commit to ``delivered``.

``make bench-notifications`` (or ``python -m bench.notifications --help``). Runs
the real path: ``create_patient`` commits the patient and its outbox row and
hands it to Celery on Redis; a ``celery -A local_worker worker`` subprocess
claims, delivers through the ``log`` provider and records ``delivered``. The
failure rate is 0. Latency is ``delivered_at - created_at`` of each row.

1. Saturation: a backlog of committed, handed-off notifications is drained by a
   worker started after them; notifications/s = count / (first -> last delivery).
2. Shared machine: producer threads commit changes as fast as they can while
   the worker delivers, both on the same cores; count / (first commit -> last delivery).
3. Fixed load: one producer commits 100 changes per second; p50/p99 latency.

Without --database-url it uses a fresh SQLite file; without --redis-url an
embedded Valkey server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib import bootstrap
from chalicelib.config.settings import PROJECT_ROOT


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", help="default: an embedded Valkey server")
    # Large enough that the workers run at saturation for several seconds, not a burst.
    parser.add_argument("--saturation-count", type=int, default=10000)
    parser.add_argument("--producers", type=int, default=2, help="threads committing changes at saturation")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="offered load for the latency run, per second"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("WORKER_PROCESSES", os.cpu_count() or 1)),
        help="worker processes, as make run starts them (default: one per CPU)",
    )
    parser.add_argument("--pool", default=os.environ.get("WORKER_POOL", "solo"))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "1")))
    return parser.parse_args()


@contextmanager
def redis_url_for(args: argparse.Namespace) -> Iterator[str]:
    if args.redis_url:
        yield args.redis_url
        return
    from scripts.embedded_services import start_embedded_redis

    server = start_embedded_redis()
    try:
        yield f"{server.connection_url}/0"
    finally:
        server.stop()


@contextmanager
def worker(args: argparse.Namespace, log_path: Path) -> Iterator[None]:
    """``args.processes`` workers, as ``make run`` starts them; stopped on leaving."""
    command = [sys.executable, "-m", "celery", "-A", "local_worker", "worker", f"--pool={args.pool}"]
    command += [f"--concurrency={args.concurrency}", "--loglevel=INFO", "--without-gossip"]
    command += ["--without-mingle", "--without-heartbeat"]
    offset = log_path.stat().st_size if log_path.exists() else 0
    processes = []
    with log_path.open("ab") as log:
        for number in range(1, args.processes + 1):
            hostname = f"--hostname=bench-{number}@%h"
            processes.append(
                subprocess.Popen([*command, hostname], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            )
    try:
        deadline = time.monotonic() + 60
        while log_path.read_text(errors="replace")[offset:].count(" ready.") < len(processes):
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start; see {log_path}")
            time.sleep(0.1)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def create(index: int) -> str:
    from chalicelib.patients import service as patients
    from chalicelib.service_layer.unit_of_work import UnitOfWork

    payload = {
        "name": f"Bench Patient {index}",
        "email": f"bench{index}@example.com",
        "phone": "+14155550100",
    }
    return patients.create_patient(
        UnitOfWork(), payload, settings=bootstrap.patient_settings()
    ).notification_id


def wait_delivered(ids: list[str], timeout: float = 300) -> None:
    from sqlalchemy import func, select

    from chalicelib.storage.database import get_engine
    from chalicelib.storage.models import Notification, NotificationStatus

    deadline = time.monotonic() + timeout
    while True:
        with get_engine().connect() as connection:
            pending = connection.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status != NotificationStatus.DELIVERED)
            )
        if not pending:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{pending} notifications not delivered after {timeout} s")
        time.sleep(0.2)


def timings(ids: list[str]) -> tuple[list[float], float]:
    """Each notification's commit-to-delivered seconds, and first commit -> last delivery."""
    from sqlalchemy import select

    from chalicelib.storage.database import get_engine
    from chalicelib.storage.models import Notification

    with get_engine().connect() as connection:
        rows = connection.execute(
            select(Notification.created_at, Notification.delivered_at).where(Notification.id.in_(ids))
        ).all()
    latencies = [(delivered - created).total_seconds() for created, delivered in rows]
    span = (max(d for _, d in rows) - min(c for c, _ in rows)).total_seconds()
    return latencies, span


def delivery_span(ids: list[str]) -> float:
    from sqlalchemy import func, select

    from chalicelib.storage.database import get_engine
    from chalicelib.storage.models import Notification

    with get_engine().connect() as connection:
        first, last = connection.execute(
            select(func.min(Notification.delivered_at), func.max(Notification.delivered_at)).where(
                Notification.id.in_(ids)
            )
        ).one()
    return float((last - first).total_seconds())


def backlog(args: argparse.Namespace, log_path: Path) -> int:
    """Commit a backlog with no worker running, then drain it; returns the next free index."""
    ids = [create(index) for index in range(args.saturation_count)]
    with worker(args, log_path):
        wait_delivered(ids)
    print(
        f"saturation (backlog of {len(ids)}): {len(ids) / delivery_span(ids):,.0f} notifications/s delivered"
    )
    return len(ids)


def saturation(args: argparse.Namespace, offset: int) -> None:
    ids: list[str] = []
    lock = threading.Lock()
    counter = iter(range(offset, offset + args.saturation_count))

    def produce() -> None:
        for index in counter:  # shared iterator: each index once across threads
            notification_id = create(index)
            with lock:
                ids.append(notification_id)

    started = time.perf_counter()
    threads = [threading.Thread(target=produce) for _ in range(args.producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committed = time.perf_counter() - started
    wait_delivered(ids)
    latencies, span = timings(ids)
    print(
        f"shared machine: {len(ids) / span:,.0f} notifications/s delivered while {args.producers} threads"
        f" committed {len(ids)} changes at {len(ids) / committed:,.0f}/s (first commit -> last delivery)"
    )
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"  commit-to-delivered meanwhile: p50 {p50:.3f} s, p99 {p99:.3f} s")


def fixed_load(args: argparse.Namespace, offset: int) -> None:
    count = int(args.rate * args.seconds)
    interval = 1 / args.rate
    ids = []
    start = time.perf_counter()
    for n in range(count):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ids.append(create(offset + n))
    achieved = count / (time.perf_counter() - start)
    wait_delivered(ids)
    latencies, _ = timings(ids)
    print(f"fixed load: {count} notifications offered at {args.rate:.0f}/s (achieved {achieved:.1f}/s)")
    print(
        f"  commit-to-delivered: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )


def percentile(values: list[float], p: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]
    )


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    with redis_url_for(args) as redis_url:
        os.environ.update(
            DATABASE_URL=args.database_url or f"sqlite:///{workdir / 'bench.db'}",
            REDIS_URL=redis_url,
            NOTIFY_FAILURE_RATE="0",
            NOTIFY_PROVIDER="log",
            APP_STAGE="dev",
        )
        from chalicelib.storage.migrate import upgrade_database

        upgrade_database(os.environ["DATABASE_URL"])
        print(
            f"database {os.environ['DATABASE_URL'].split('://')[0]}, {args.processes} worker processes "
            f"--pool={args.pool} --concurrency={args.concurrency}, {os.cpu_count()} CPUs; "
            f"worker log {workdir / 'worker.log'}"
        )
        offset = backlog(args, workdir / "worker.log")
        with worker(args, workdir / "worker.log"):
            saturation(args, offset=offset)
            fixed_load(args, offset=offset + args.saturation_count)


if __name__ == "__main__":
    main()
