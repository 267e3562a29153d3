"""What importing the API costs: no broker, AWS SDK, migrations or validators until a request needs them,
and no full run of the cyclic garbage collector over what the imports build.

A request's own imports are measured in an emulated Lambda, tests/deploy/test_cold_start_imports.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.config.settings import PROJECT_ROOT
from deploy.lambda_runtime import lambda_environment
from tests.helpers.cold_start import heavy_modules


def test_importing_app_loads_none_of_them(sqlite_url: str) -> None:
    env = lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url, API_TOKENS="clinic:cold-start-token")
    script = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )

    modules = json.loads(result.stdout)
    assert "app" in modules and "chalice" in modules
    assert heavy_modules(modules) == []


def test_importing_app_runs_no_full_collection_and_leaves_the_collector_on(sqlite_url: str) -> None:
    # GIVEN a fresh interpreter that counts the cyclic collector's full (oldest-generation) runs
    env = lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url, API_TOKENS="clinic:cold-start-token")
    script = (
        "import gc, json\n"
        "full = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'stop' and info['generation'] == 2"
        " and full.append(1))\n"
        "import app\n"
        "print(json.dumps({'full_collections': len(full), 'enabled': gc.isenabled(),"
        " 'frozen': gc.get_freeze_count()}))"
    )

    # WHEN it imports the app
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )

    # THEN no full collection scanned what the imports built (it would cost ~30 ms of the cold start),
    # those objects are out of later collections' way, and the collector runs again
    report = json.loads(result.stdout)
    assert report["full_collections"] == 0
    assert report["frozen"] > 0
    assert report["enabled"] is True
