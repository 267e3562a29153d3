"""Cold start pays only for what a request needs: no broker, AWS SDK, migrations or validators.

Importing the app alone is tests/unit/test_cold_start.py; here a read, in an emulated Lambda.
"""

from __future__ import annotations

from chalicelib.config.settings import PROJECT_ROOT
from deploy.lambda_events import allowed_token_context, rest_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment
from tests.helpers import heavy_modules


def test_a_read_loads_none_of_them(sqlite_url: str) -> None:
    event = rest_event(
        "GET",
        "/patients/{patient_id}",
        "/patients/1",
        path_parameters={"patient_id": "1"},
        authorizer=allowed_token_context("clinic", "patients:read patients:write"),
    )

    with LambdaContainer(
        PROJECT_ROOT,
        lambda_environment(APP_STAGE="dev", DATABASE_URL=sqlite_url, API_TOKENS="clinic:cold-start-token"),
        isolated=False,
    ) as container:
        response = container.invoke("app.app", event)
        modules = container.report()["modules"]

    assert response["statusCode"] == 404  # the database is empty: a full read, answered
    assert heavy_modules(modules) == []
