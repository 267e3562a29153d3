"""``make run``: migrate the database, then serve the API with ``chalice local``."""

from __future__ import annotations

import os
import sys

from chalicelib.schema import upgrade_database

HOST = os.environ.get("API_HOST", "127.0.0.1")
PORT = os.environ.get("API_PORT", "8000")


def main() -> None:
    upgrade_database()
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    # No autoreload: its watcher walks the whole project, .data/ included, and restarts on every write.
    os.execv(chalice, [chalice, "local", "--no-autoreload", "--host", HOST, "--port", PORT, "--stage", "dev"])


if __name__ == "__main__":
    main()
