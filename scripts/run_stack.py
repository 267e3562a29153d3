"""``make run``: migrate the database, then serve the API with ``chalice local``."""

from __future__ import annotations

import os
import sys

from chalicelib.schema import upgrade_database

HOST = os.environ.get("API_HOST", "127.0.0.1")
PORT = os.environ.get("API_PORT", "8000")


def main() -> None:
    upgrade_database()
    # No autoreload: its watcher walks the whole project, .data/ included, and restarts on every write.
    # scripts.local_api is chalice local without its ~44 ms stall per request on a kept-alive connection.
    options = ["--no-autoreload", "--host", HOST, "--port", PORT, "--stage", "dev"]
    os.execv(sys.executable, [sys.executable, "-m", "scripts.local_api", *options])


if __name__ == "__main__":
    main()
