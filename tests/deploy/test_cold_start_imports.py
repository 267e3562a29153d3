"""Cold start pays only for what a request needs: no broker, AWS SDK, migrations or validators."""

from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.config.settings import PROJECT_ROOT
from deploy.lambda_events import allowed_token_context, rest_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment

LOADED_ON_FIRST_USE = (
    "celery",
    "kombu",
    "redis",
    "boto3",
    "botocore",
    "alembic",
    "email_validator",
    "phonenumbers",
)


def heavy_modules(modules: list[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in LOADED_ON_FIRST_USE)


def test_importing_app_loads_none_of_them(sqlite_url: str) -> None:
    env = lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url)
    script = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )

    modules = json.loads(result.stdout)
    assert "app" in modules and "chalice" in modules
    assert heavy_modules(modules) == []


def test_a_read_loads_none_of_them(sqlite_url: str) -> None:
    event = rest_event(
        "GET",
        "/patients/{patient_id}",
        "/patients/1",
        path_parameters={"patient_id": "1"},
        authorizer=allowed_token_context("clinic", "patients:read patients:write"),
    )

    with LambdaContainer(
        PROJECT_ROOT, lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url), isolated=False
    ) as container:
        response = container.invoke("app.app", event)
        modules = container.report()["modules"]

    assert response["statusCode"] == 404  # the database is empty: a full read, answered
    assert heavy_modules(modules) == []
