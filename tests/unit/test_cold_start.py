"""What importing the API costs: the broker and AWS clients load on first use only."""

from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.config.settings import PROJECT_ROOT

LOADED_ON_FIRST_USE = ("celery", "kombu", "redis", "boto3", "botocore")


def test_importing_the_app_loads_no_broker_or_aws_client() -> None:
    script = "import sys, json, app; print(json.dumps(sorted(m for m in sys.modules if '.' not in m)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )

    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint(LOADED_ON_FIRST_USE), loaded & set(LOADED_ON_FIRST_USE)
