"""The packaged Lambda artifact, built once per test session by ``make package``'s code."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from deploy.package import PackageOutput, build_package


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> PackageOutput:
    return build_package(tmp_path_factory.mktemp("package") / "out")


@pytest.fixture(scope="session")
def unzipped_artifact(lambda_package: PackageOutput, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deployment.zip unzipped into an empty directory and made read-only, as Lambda's /var/task."""
    task_root = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(lambda_package.deployment_zip) as archive:
        archive.extractall(task_root)
    for directory, _dirs, files in os.walk(task_root):
        for name in files:
            os.chmod(os.path.join(directory, name), 0o444)
    for directory, _dirs, _files in os.walk(task_root, topdown=False):
        os.chmod(directory, 0o555)  # noqa: S103 - read and search, no write
    return task_root
