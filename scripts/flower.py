"""``make flower``: Celery's dashboard (Flower) for the workers of the local stack.

Run it beside ``make run``, in a second terminal: it reads the Redis URL the
running stack wrote to ``$TELEHEALTH_DATA_DIR/redis-url`` (the embedded Valkey's
port changes at each start), or REDIS_URL when set. Then it becomes
``celery -A local_worker flower`` on http://127.0.0.1:$FLOWER_PORT (5555), bound
to the loopback only. The tasks carry ids, never patient data, so the
dashboard shows none. Its HTTP API (``/api/workers``) answers without
credentials only with FLOWER_UNAUTHENTICATED_API=true.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from chalicelib.config.settings import PROJECT_ROOT

DEFAULT_PORT = "5555"
# What run_stack writes for the duration of the stack: the URL of the Redis its workers use.
REDIS_URL_FILE = "redis-url"
# Variables the worker's settings would resolve through AWS (`make run AWS=emulated`): Flower reads
# the plain URL instead, so it needs neither the emulated AWS nor the database.
AWS_REFERENCES = ("API_TOKENS_SECRET_ID", "DATABASE_URL_PARAMETER", "REDIS_URL_PARAMETER")


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("TELEHEALTH_DATA_DIR") or PROJECT_ROOT / ".data")


def write_owner_only(path: Path, line: str) -> Path:
    """Write ``line`` to a fresh ``path``, created readable by its owner only; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(line + "\n")
    return path


def write_redis_url(env: Mapping[str, str], url: str) -> Path:
    """Record the stack's Redis URL for ``make flower`` (readable by its owner only); returns the file."""
    return write_owner_only(data_dir(env) / REDIS_URL_FILE, url)


def forget_redis_url(env: Mapping[str, str]) -> None:
    (data_dir(env) / REDIS_URL_FILE).unlink(missing_ok=True)


def flower_command(env: Mapping[str, str]) -> tuple[list[str], dict[str, str]] | str:
    """The command and environment that run Flower; a one-line reason instead when it cannot run."""
    redis_url = env.get("REDIS_URL")
    if not redis_url:
        try:
            redis_url = (data_dir(env) / REDIS_URL_FILE).read_text().strip()
        except FileNotFoundError:
            return "no local stack is running: start one with `make run` (or set REDIS_URL), then retry"
    port = env.get("FLOWER_PORT") or DEFAULT_PORT
    if not port.isdigit():
        return f"FLOWER_PORT must be a port number, not {port!r}"
    flower_env = {key: value for key, value in env.items() if key not in AWS_REFERENCES}
    flower_env.update(APP_STAGE=env.get("APP_STAGE") or "dev", REDIS_URL=redis_url)
    celery = str(Path(sys.executable).with_name("celery"))
    command = [celery, "-A", "local_worker", "flower", "--address=127.0.0.1", f"--port={port}"]
    return command, flower_env


def main() -> int:
    found = flower_command(os.environ)
    if isinstance(found, str):
        print(found, file=sys.stderr)
        return 1
    command, env = found
    print(f"Flower on http://127.0.0.1:{command[-1].split('=')[1]} (Ctrl-C stops it)", file=sys.stderr)
    os.chdir(PROJECT_ROOT)
    # Flower becomes this process: a signal to `make flower` reaches it directly, nothing is left behind.
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
