"""The artifact carries only what Lambda runs: every top-level package in the zip is reached by a function.

``deploy.artifact_contents`` declares what ``make package`` prunes and why; these
tests hold the built zip to it. A requirement nothing imports, or a prune rule
that removes a module some import still needs, fails here with its name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import redis

from chalicelib.config.tokens import token_sha256
from chalicelib.storage.migrate import upgrade_database
from deploy.artifact_contents import (
    SHIPPED_UNREACHED,
    ImportClosure,
    import_closure,
    importable_top_levels,
    pruned_but_imported,
    unreached_top_levels,
)
from deploy.bytecode import MAX_ZIPPED_BYTES
from deploy.lambda_events import authorizer_context, rest_event, token_event
from deploy.lambda_runtime import LambdaContainer, lambda_environment
from deploy.package import PackageOutput
from tests.helpers.patients import JOHN, without_phone

# Issue 14's goal for the zip (Lambda's own limit, MAX_ZIPPED_BYTES, is 50 MB).
TARGET_ZIPPED_BYTES = 25_000_000
TOKEN = "artifact-contents-token"
BEARER = f"Bearer {TOKEN}"
SEND_TASK = "notifications.send_notification"
CELERY_QUEUE = "celery"  # Celery's default queue: the API names none


@pytest.fixture(scope="module")
def entry_modules(sam: dict[str, Any]) -> set[str]:
    """The module of every function's handler, as the SAM template names them (``app.app`` -> ``app``)."""
    resources = sam["Resources"].values()
    handlers = {r["Properties"]["Handler"] for r in resources if r["Type"] == "AWS::Serverless::Function"}
    return {handler.rsplit(".", 1)[0] for handler in handlers}


@pytest.fixture(scope="module")
def closure(unzipped_artifact: Path, entry_modules: set[str]) -> ImportClosure:
    return import_closure(unzipped_artifact, entry_modules)


def test_the_zip_is_within_the_size_goal(lambda_package: PackageOutput) -> None:
    zipped = lambda_package.deployment_zip.stat().st_size

    assert zipped <= TARGET_ZIPPED_BYTES < MAX_ZIPPED_BYTES, f"{zipped / 1e6:.1f} MB zipped"


def test_every_top_level_package_in_the_zip_is_reached_by_a_function(
    unzipped_artifact: Path, closure: ImportClosure
) -> None:
    unreached = unreached_top_levels(unzipped_artifact, closure)

    assert unreached == set(), (
        "no function imports these: drop the requirement, prune them in deploy/artifact_contents.py,"
        " or say in SHIPPED_UNREACHED why they stay"
    )


def test_every_excused_package_is_still_shipped(unzipped_artifact: Path) -> None:
    assert set(SHIPPED_UNREACHED) <= importable_top_levels(unzipped_artifact), "a stale excuse"


def test_no_module_an_import_reaches_was_pruned(closure: ImportClosure) -> None:
    assert pruned_but_imported(closure) == set()


def test_no_local_server_code_is_in_the_zip(unzipped_artifact: Path) -> None:
    # Local serving (the top-level local_server package) runs on a laptop only: app.py imports it
    # under plain chalice local, and neither it nor an edge module for it may ride in the zip.
    modules = [path.relative_to(unzipped_artifact).as_posix() for path in unzipped_artifact.rglob("*.py")]

    local = [m for m in modules if m.startswith("local_server/") or fnmatchcase(m, "chalicelib/http/local_*")]
    assert local == []
    assert "app.py" in modules and "chalicelib/http/gateway_responses.py" in modules  # the walk saw the zip


@pytest.fixture(scope="module")
def redis_container(
    unzipped_artifact: Path, tmp_path_factory: pytest.TempPathFactory, redis_database_url: str
) -> Iterator[tuple[LambdaContainer, str]]:
    """The API's function with Redis: a create hands its notification to Celery."""
    database = tmp_path_factory.mktemp("contents-db") / "telehealth.db"
    upgrade_database(f"sqlite:///{database}")
    with redis.Redis.from_url(redis_database_url) as client:
        client.flushdb()
    env = lambda_environment(
        APP_STAGE="dev",
        DATABASE_URL=f"sqlite:///{database}",
        REDIS_URL=redis_database_url,
        API_TOKEN_SHA256=f"clinic-a[patients:read patients:write]:{token_sha256(TOKEN).hex()}",
    )
    with LambdaContainer(unzipped_artifact, env) as process:
        yield process, redis_database_url


def call(container: LambdaContainer, method: str, resource: str, path: str, **kwargs: Any) -> Any:
    policy = container.invoke("app.authorize_bearer_token", token_event(BEARER, method, path))
    event = rest_event(
        method, resource, path, authorizer=authorizer_context(policy), authorization=BEARER, **kwargs
    )
    return container.invoke("app.app", event)


def test_what_a_function_loads_is_inside_the_closure_including_the_celery_hand_off(
    redis_container: tuple[LambdaContainer, str], closure: ImportClosure, unzipped_artifact: Path
) -> None:
    # GIVEN the pruned artifact with Redis configured
    container, redis_url = redis_container

    # WHEN a create hands its notification off through Celery; a read, the OpenAPI document, a docs asset
    created = call(container, "POST", "/patients", "/patients", body=without_phone(JOHN))
    read = call(
        container, "GET", "/patients/{patient_id}", "/patients/1", path_parameters={"patient_id": "1"}
    )
    document = container.invoke(
        "app.app", rest_event("GET", "/openapi.json", "/openapi.json", authorizer=None)
    )
    asset = container.invoke(
        "app.app",
        rest_event(
            "GET",
            "/docs/assets/{asset}",
            "/docs/assets/swagger-ui-bundle.js",
            authorizer=None,
            path_parameters={"asset": "swagger-ui-bundle.js"},
        ),
    )
    loaded = container.report()["modules"]

    # THEN each answered, the send task is on Celery's queue in Redis ...
    assert (created["statusCode"], read["statusCode"], document["statusCode"]) == (201, 200, 200)
    assert asset["statusCode"] == 200 and "SwaggerUIBundle" in asset["body"]
    with redis.Redis.from_url(redis_url) as client:
        messages = [json.loads(raw) for raw in client.lrange(CELERY_QUEUE, 0, -1)]
    assert [message["headers"]["task"] for message in messages] == [SEND_TASK]
    assert "celery" in loaded and "kombu.transport.redis" in loaded
    # ... and every top-level package they loaded from the artifact is one the static closure reaches
    shipped = importable_top_levels(unzipped_artifact)
    loaded_from_artifact = {name.split(".", 1)[0] for name in loaded} & shipped
    assert loaded_from_artifact - closure.top_levels - set(SHIPPED_UNREACHED) == set()
