"""What importing the API costs: no broker, AWS SDK, migrations or validators until a request needs them.

A request's own imports are measured in an emulated Lambda, tests/deploy/test_cold_start_imports.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.config.settings import PROJECT_ROOT
from deploy.lambda_runtime import lambda_environment
from tests.helpers import heavy_modules


def test_importing_app_loads_none_of_them(sqlite_url: str) -> None:
    env = lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url, API_TOKENS="clinic:cold-start-token")
    script = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )

    modules = json.loads(result.stdout)
    assert "app" in modules and "chalice" in modules
    assert heavy_modules(modules) == []
