"""The packaged Lambda artifact, built once per test session by ``make package``'s code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy.lambda_runtime import unpack_task_root
from deploy.package import PackageOutput, build_package


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> PackageOutput:
    return build_package(tmp_path_factory.mktemp("package") / "out")


@pytest.fixture(scope="session")
def unzipped_artifact(lambda_package: PackageOutput, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deployment.zip unzipped into an empty, read-only directory, as Lambda's /var/task."""
    return unpack_task_root(lambda_package.deployment_zip, tmp_path_factory.mktemp("var-task"))


@pytest.fixture(scope="session")
def sam_api_definition(lambda_package: PackageOutput) -> dict[str, Any]:
    """The Swagger document the SAM template gives API Gateway."""
    template = json.loads(lambda_package.sam_template.read_text())
    return dict(template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])
