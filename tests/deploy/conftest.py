"""The packaged Lambda artifact, built once per test session by ``make package``'s code."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.lambda_runtime import unpack_task_root
from deploy.package import PackageOutput, build_package


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> PackageOutput:
    return build_package(tmp_path_factory.mktemp("package") / "out")


@pytest.fixture(scope="session")
def unzipped_artifact(lambda_package: PackageOutput, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deployment.zip unzipped into an empty, read-only directory, as Lambda's /var/task."""
    return unpack_task_root(lambda_package.deployment_zip, tmp_path_factory.mktemp("var-task"))


@pytest.fixture(scope="module")
def sam(lambda_package: PackageOutput) -> dict[str, Any]:
    """The SAM template ``make package`` wrote, fresh for each module (a test may change its copy)."""
    return dict(json.loads(lambda_package.sam_template.read_text()))


@pytest.fixture(scope="module")
def terraform(lambda_package: PackageOutput) -> dict[str, Any]:
    """The Terraform configuration ``make package`` wrote, fresh for each module."""
    return dict(json.loads(lambda_package.terraform_config.read_text()))


@pytest.fixture(scope="session")
def sam_api_definition(lambda_package: PackageOutput) -> dict[str, Any]:
    """The Swagger document the SAM template gives API Gateway."""
    template = json.loads(lambda_package.sam_template.read_text())
    return dict(template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto_server of its own on a free port, for one test module."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
