"""Cold start pays only for what a request needs: no broker, AWS SDK, migrations or validators.

Importing the app alone is tests/unit/test_cold_start.py; here a read, in an emulated Lambda.
A read also loads only the modules listed here: one more (an import at the top of a module
that only another request needs) fails with its name. Import it on first use instead
(inside the function that needs it, as ``functions/get_openapi_document.py`` does), or add it
here if every request needs it.
"""

from __future__ import annotations

import sys
from typing import Any

from chalicelib.config.settings import PROJECT_ROOT
from deploy.lambda_events import allowed_token_context, rest_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment
from tests.helpers.cold_start import heavy_modules

# Libraries a cold read loads (by top-level package): the framework, the database layer, the JSON
# access log. The database driver of SQLite is the standard library's.
LIBRARIES_OF_A_READ = {"chalice", "sqlalchemy", "typing_extensions"}
# Our own modules a cold read loads, by full name. app.py imports every handler module (each declares
# its route), so what those import at their top is here too.
OUR_MODULES_OF_A_READ = {
    "app",
    "functions",
    *(
        f"functions.{path.stem}"
        for path in (PROJECT_ROOT / "functions").glob("*.py")
        if path.stem != "__init__"
    ),
    "chalicelib",
    "chalicelib.bootstrap",
    "chalicelib.errors",
    "chalicelib.paging",
    "chalicelib.scopes",
    "chalicelib.shapes",
    "chalicelib.validation",
    "chalicelib.access",
    "chalicelib.access.rate_limit",
    "chalicelib.audit",
    "chalicelib.audit.queries",
    "chalicelib.audit.recording",
    "chalicelib.audit.service",
    "chalicelib.audit.shapes",
    "chalicelib.config",
    "chalicelib.config.environment",
    "chalicelib.config.logs",
    "chalicelib.config.metrics",
    "chalicelib.config.notifications",
    "chalicelib.config.process_cache",
    "chalicelib.config.provided",
    "chalicelib.config.schedules",
    "chalicelib.config.secrets",
    "chalicelib.config.settings",
    "chalicelib.config.token_secret",
    "chalicelib.config.tokens",
    "chalicelib.health",
    "chalicelib.health.service",
    "chalicelib.http",
    "chalicelib.http.authorizer",
    "chalicelib.http.docs_page",
    "chalicelib.http.endpoints",
    "chalicelib.http.errors",
    "chalicelib.http.middleware",
    "chalicelib.http.openapi_headers",
    "chalicelib.http.requests",
    "chalicelib.http.responses",
    "chalicelib.http.routes",
    "chalicelib.http.schedules",
    "chalicelib.http.startup",
    "chalicelib.notifications",
    "chalicelib.notifications.events",
    "chalicelib.notifications.queries",
    "chalicelib.notifications.service",
    "chalicelib.notifications.shapes",
    "chalicelib.observability",
    "chalicelib.observability.metric_catalogue",
    "chalicelib.observability.metrics",
    "chalicelib.observability.structured_logging",
    "chalicelib.patients",
    "chalicelib.patients.fields",
    "chalicelib.patients.idempotency",
    "chalicelib.patients.phi",
    "chalicelib.patients.preconditions",
    "chalicelib.patients.queries",
    "chalicelib.patients.service",
    "chalicelib.patients.shapes",
    "chalicelib.service_layer",
    "chalicelib.service_layer.unit_of_work",
    "chalicelib.storage",
    "chalicelib.storage.database",
    "chalicelib.storage.models",
    "chalicelib.storage.schema",
}
OURS = ("app", "functions", "chalicelib")


def unexpected_modules(modules: list[str]) -> list[str]:
    """Our modules not in OUR_MODULES_OF_A_READ and libraries not in LIBRARIES_OF_A_READ.

    The standard library and the interpreter's own helpers (``_``-prefixed, ``cython_runtime``)
    are left out: they are not ours to choose.
    """

    def unexpected(name: str) -> bool:
        top = name.split(".")[0]
        if top in OURS:
            return name not in OUR_MODULES_OF_A_READ
        interpreters = top in sys.stdlib_module_names or top.startswith("_") or top == "cython_runtime"
        return not interpreters and top not in LIBRARIES_OF_A_READ

    return sorted(filter(unexpected, modules))


def fhir_read_event() -> dict[str, Any]:
    event = rest_event(
        "GET",
        "/fhir/Patient/{patient_id}",
        "/fhir/Patient/1",
        path_parameters={"patient_id": "1"},
        authorizer=allowed_token_context("clinic", "patients:read patients:write"),
    )
    event["headers"]["Accept"] = event["multiValueHeaders"]["Accept"][0] = "application/fhir+json"
    return event


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
        # Then a FHIR read in the same container: the FHIR face loads with its first request.
        fhir_response = container.invoke("app.app", fhir_read_event())
        modules_after_fhir = container.report()["modules"]

    assert response["statusCode"] == 404  # the database is empty: a full read, answered
    assert heavy_modules(modules) == []
    assert unexpected_modules(modules) == []
    assert not [name for name in modules if name.startswith("chalicelib.fhir")]
    assert fhir_response["statusCode"] == 404
    assert "chalicelib.fhir" in modules_after_fhir
    # ...and no library: the FHIR answers are plain dicts (fhir.resources is a test tool only).
    assert heavy_modules(modules_after_fhir) == []
    assert [
        name for name in unexpected_modules(modules_after_fhir) if not name.startswith("chalicelib.fhir")
    ] == []
    # The OpenAPI builder and its schema catalogue, the local server's emulation, token parsing:
    # only the requests that use them import them.
    assert not {
        "chalicelib.http.openapi",
        "local_server",
        "local_server.request_handling",
        "chalicelib.access.identity",
    } & set(modules)
