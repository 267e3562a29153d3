"""The README's curl block, run top to bottom with bash against ``make run``'s stack, as a newcomer
would paste it: no request may meet a missing route or patient (404) or a server error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

from chalicelib.config.settings import PROJECT_ROOT
from tests.helpers.stack import Stack
from tests.helpers.waiting import wait_until

API_LINE = "API=http://127.0.0.1:8000"
# Every curl of the block also writes its status to stderr; -w comes last, so it wins over any other.
RECORD_STATUS = (
    "curl() { command curl \"$@\" -w '%{stderr}STATUS %{http_code} %{method} %{url_effective}\\n'; }\n"
)


def readme_curl_block() -> str:
    """The first bash block under "## Using the API"."""
    section = (PROJECT_ROOT / "README.md").read_text().split("## Using the API", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_curl_block_runs_top_to_bottom_against_make_run(start_stack: Callable[..., Stack]) -> None:
    # GIVEN make run's stack on a free port, serving, and the README's block aimed at it
    stack = start_stack(workers=1)
    wait_until(stack.serving, timeout=90, interval=0.2)
    block = readme_curl_block()
    assert API_LINE in block, "the block no longer sets API the way this test replaces it"
    script = RECORD_STATUS + block.replace(API_LINE, f"API={stack.base_url}")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}

    # WHEN bash runs it, twice: a reader may paste it again
    for _ in range(2):
        run = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=PROJECT_ROOT
        )
        answers = re.findall(r"^STATUS (\d{3}) (\S+) (\S+)$", run.stderr, re.MULTILINE)

        # THEN every curl got an answer, none a 404 or a 5xx
        assert run.returncode == 0, run.stderr
        assert len(answers) == len(re.findall(r"(?<![\w-])curl -s", block)), run.stderr
        assert [a for a in answers if a[0] == "000" or a[0] == "404" or a[0] >= "500"] == [], run.stdout
