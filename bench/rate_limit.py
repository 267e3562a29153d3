"""What the rate limit costs a request, with Redis up, refusing connections, or hung.

    make bench-rate-limit          (or: .venv/bin/python -m bench.rate_limit --requests 2000)

Redis is REDIS_URL or an embedded Valkey server. Times ``enforce_rate_limit``
alone and ``GET /patients`` through chalice.test.Client with the limit off and
on; then the first request and the ones after it while Redis refuses
connections, and while it accepts them and never answers. Prints p50/p99 per case.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TOKEN = "bench-token"


def timings_ms(call: Callable[[], object], count: int) -> list[float]:
    spent = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def take_one_request(principal: str) -> None:
    from chalicelib import bootstrap
    from chalicelib.access.rate_limit import enforce_rate_limit

    settings = bootstrap.settings()
    enforce_rate_limit(principal, settings.rate_limit, settings.redis_url)


def report(case: str, spent: list[float]) -> None:
    p99 = statistics.quantiles(spent, n=100)[98] if len(spent) > 1 else spent[0]
    print(f"{case:<58} {len(spent):>6} {statistics.median(spent):>9.3f} {p99:>9.3f}")


def configure(**env: str) -> None:
    from chalicelib.bootstrap import reset_for_tests

    os.environ.update(env)
    reset_for_tests()


@contextmanager
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    from scripts.embedded_services import start_embedded_redis

    server = start_embedded_redis()
    try:
        yield server.connection_url
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    count = parser.parse_args().requests

    import chalice.test

    from chalicelib.storage.migrate import upgrade_database

    with tempfile.TemporaryDirectory() as scratch, redis_url() as url:
        database = f"sqlite:///{Path(scratch) / 'bench.db'}"
        upgrade_database(database)
        prefix = f"bench-rate-limit:{uuid.uuid4().hex[:8]}:"
        generous = {"RATE_LIMIT_PER_MINUTE": "6000000", "RATE_LIMIT_BURST": str(count * 10)}
        configure(
            APP_STAGE="dev", DATABASE_URL=database, API_TOKENS=f"bench:{TOKEN}", RATE_LIMIT_KEY_PREFIX=prefix
        )
        from app import app

        # A stage .chalice/config.json does not name, so these settings stand.
        client = chalice.test.Client(app, stage_name="bench")
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def list_patients() -> object:
            return client.http.get("/patients", headers=headers)

        print(f"{'case':<58} {'calls':>6} {'p50 ms':>9} {'p99 ms':>9}")
        configure(REDIS_URL=url, **generous)
        report("enforce_rate_limit, Redis up", timings_ms(lambda: take_one_request("bench"), count))
        configure(RATE_LIMIT_PER_MINUTE="0")
        report("GET /patients, limit off", timings_ms(list_patients, count))
        configure(**generous)
        report("GET /patients, limit on", timings_ms(list_patients, count))

        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            refusing = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(64)
            hung = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
            for name, dead_url in (("refusing connections", refusing), ("hung", hung)):
                configure(REDIS_URL=dead_url)
                report(f"GET /patients, Redis {name}: first request", timings_ms(list_patients, 1))
                report(f"GET /patients, Redis {name}: in the back-off", timings_ms(list_patients, count))


if __name__ == "__main__":
    main()
