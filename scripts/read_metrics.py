"""The local stack's metrics, one short line each: ``make run | .venv/bin/python -m scripts.read_metrics``.

Every process of the stack writes its metrics as CloudWatch EMF lines among its
JSON log lines (``chalicelib.observability.metrics``), as Lambda would ship
them. This filter keeps only those and prints each as the process that wrote
it, its dimensions and its values with their units::

    15:31:16 api.1     Route=/patients StatusClass=2xx  Requests=1  Latency=611.71 ms
    15:31:16 worker.1  NotificationsDelivered=1  DeliveryLatency=581.27 ms

Other lines are dropped (``--all`` passes them through unchanged). It ends when the stack does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from typing import Any

UNITS = {"Milliseconds": " ms", "Seconds": " s", "Count": ""}
# The dimension every line carries, the same on each: left out of the short line.
COMMON_DIMENSIONS = ("Service",)


def short_line(line: str) -> str | None:
    """``line`` (as honcho prints it, "HH:MM:SS name | {...}", or bare) in short; None unless EMF."""
    prefix, _, body = line.rpartition("| ") if "| {" in line else ("", "", line)
    try:
        emf: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(emf, dict) or not isinstance(emf.get("_aws"), dict):
        return None
    directives = emf["_aws"].get("CloudWatchMetrics", [])
    dimensions = sorted(
        {name for d in directives for names in d.get("Dimensions", []) for name in names}
        - set(COMMON_DIMENSIONS)
    )
    values = [
        f"{m['Name']}={_value(emf.get(m['Name']))}{UNITS.get(m.get('Unit', ''), ' ' + m.get('Unit', ''))}"
        for d in directives
        for m in d.get("Metrics", [])
    ]
    where = " ".join(prefix.split())
    shown = " ".join(f"{name}={emf.get(name)}" for name in dimensions)
    return "  ".join(part for part in (f"{where:<18}" if where else "", shown, "  ".join(values)) if part)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def read(lines: Iterable[str], *, everything: bool = False) -> Iterator[str]:
    for line in lines:
        shown = short_line(line.rstrip("\n"))
        if shown is not None:
            yield shown
        elif everything:
            yield line.rstrip("\n")


def main() -> int:
    # Ctrl-C reaches the whole pipeline: the stack stops and closes its output, and this filter,
    # still reading, shows its last lines and ends at that end of file. Ending at once instead would
    # break the pipe under the stack while it stops.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        for shown in read(sys.stdin, everything="--all" in sys.argv[1:]):
            print(shown, flush=True)
    except BrokenPipeError:  # our reader went first (`| head`): nothing more to show, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
