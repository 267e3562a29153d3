"""What the worker's image runs, run without Docker: the Dockerfile's own steps and its exact command.

No Docker engine runs here or in CI, so the image is not built. Instead the test reads
deploy/worker.Dockerfile and does what a build would: the build stage's ``COPY`` (through
.dockerignore) and ``RUN`` steps, with the container's paths (/opt/venv, /app, /tmp) mapped to
directories under build/worker-image/; the venv is kept there and built again only when its step or
the requirements change, so CI pays for the install once per clone. It then starts the image's
``CMD`` with the image's ``ENV`` only (plus what the task definition adds: the stage, the database
and Redis URLs, the log provider in place of SES/SNS), as the image's non-root user when the test
runs as root (CI does) and that user can reach the files and the database, so the code and the venv
are not writable to it, and checks that a
notification is delivered and that SIGTERM stops the worker warm: the task it was running finishes,
and it exits 0 within the task definition's stop timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.storage.database import get_engine
from deploy.worker_image import WORKER_STOP_TIMEOUT_SECONDS, WORKER_TMP_DIR, WORKER_USER
from tests.helpers.dockerfile import Stage, dockerignore_patterns, in_build_context, parse_dockerfile
from tests.helpers.patients import JANE, numbered
from tests.helpers.tokens import AUTH, JSON_AUTH
from tests.helpers.waiting import parse_json_lines, wait_until

DOCKERFILE = PROJECT_ROOT / "deploy" / "worker.Dockerfile"
CACHE = PROJECT_ROOT / "build" / "worker-image"
# The official Python images' PATH, which the image's ENV extends.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The container's paths that the Dockerfile names, and where they are here.
VENV, APP, BUILD_DIR = "/opt/venv", "/app", "/build"


@dataclass
class WorkerImage:
    """The image's parts, laid out here: its command, environment, working directory."""

    command: list[str]
    environment: dict[str, str]
    workdir: Path
    tmp: Path
    read_only: list[Path]


def mapped(text_: str, paths: dict[str, Path]) -> str:
    """``text_`` with the container's paths replaced by their places here."""
    pattern = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    return re.sub(rf"(?<![\w./-])({pattern})(?=/|\s|$|:)", lambda m: str(paths[m.group(1)]), text_)


def copy_into_place(sources: list[str], destination: Path) -> None:
    """``COPY`` from the repository root as the build context, through .dockerignore."""
    patterns = dockerignore_patterns(PROJECT_ROOT / ".dockerignore")

    def ignored(directory: str, names: list[str]) -> list[str]:
        relative = Path(directory).relative_to(PROJECT_ROOT)
        return [n for n in names if not in_build_context(patterns, str(relative / n))]

    for source in sources:
        path = PROJECT_ROOT / source
        assert in_build_context(patterns, source.rstrip("/")), f"{source} is not in the build context"
        if path.is_dir():
            target = destination / path.name if not source.endswith("/") else destination
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(path, target, ignore=ignored)
        else:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination / path.name)


def image_python() -> Path:
    """The base image's ``python`` here: a Python of the suite's minor version that the image's user
    can run (this one may live under a private home, as pyenv's under /root), else this one."""
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys._base_executable), Path("/usr/local/bin", name), Path("/usr/bin", name)):
        if candidate.name == name and reachable_by_others(candidate.resolve()) and _has_venv(candidate):
            return candidate
    return Path(sys.executable)


def _has_venv(python: Path) -> bool:
    check = [python, "-c", "import ensurepip, venv"]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def reachable_by_others(path: Path) -> bool:
    """Whether a user with no rights of its own can reach ``path`` (and run it, if it is a file)."""
    return path.exists() and all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def run_build_stage(build: Stage, paths: dict[str, Path]) -> None:
    """The build stage's steps in order; the venv's step only when its cache key changed."""
    shim = CACHE / "base-image-bin"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "python").unlink(missing_ok=True)
    (shim / "python").symlink_to(image_python())
    env = build.environment({"PATH": f"{shim}:{BASE_IMAGE_PATH}"})
    workdir = PROJECT_ROOT
    for instruction in build.instructions:
        arguments = mapped(instruction.arguments, paths)
        if instruction.keyword == "WORKDIR":
            workdir = Path(arguments)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.arguments.split()
            target = Path(mapped(destination, paths)) if destination.startswith("/") else workdir
            copy_into_place(sources, target)
        elif instruction.keyword == "RUN":
            installs_the_venv = f" -m venv {VENV}" in instruction.arguments
            key = _venv_key(instruction.arguments) if installs_the_venv else ""
            key_file = CACHE / "venv.key"
            if installs_the_venv and key_file.exists() and key_file.read_text() == key:
                continue
            if installs_the_venv:
                key_file.unlink(missing_ok=True)
                shutil.rmtree(paths[VENV], ignore_errors=True)
            step_env = {**pip_reaches_its_index(), **env}
            subprocess.run(["sh", "-c", arguments], cwd=workdir, env=step_env, check=True)
            if installs_the_venv:
                key_file.write_text(key)


def pip_reaches_its_index() -> dict[str, str]:
    """What pip needs of this machine's environment to find its index (a build's own settings)."""
    wanted = ("HOME", "PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_")
    return {k: v for k, v in os.environ.items() if k.upper().startswith(wanted)}


def _venv_key(step: str) -> str:
    requirements = (PROJECT_ROOT / name for name in ("requirements.txt", "requirements-worker.txt"))
    digest = hashlib.sha256(f"{image_python()}\n{step}".encode())
    for path in requirements:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def worker_image() -> Iterator[WorkerImage]:
    """The image's files laid out as its Dockerfile builds them; a fresh /tmp for this test."""
    build, final = parse_dockerfile(DOCKERFILE)
    paths = {VENV: CACHE / "venv", APP: CACHE / "app", BUILD_DIR: CACHE / "context"}
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(paths[APP], ignore_errors=True)
    run_build_stage(build, paths)
    tmp = paths[WORKER_TMP_DIR] = scratch_directory()
    # The final stage copies the venv and /app from the build stage to the same paths: nothing to do.
    # Its one RUN, naming the user, is not run here: this test gives the host no new user.
    assert [i.arguments for i in final.all("COPY")] == [
        f"--from=build {VENV} {VENV}",
        f"--from=build {APP} {APP}",
    ]
    environment = {
        name: mapped(value, paths) for name, value in final.environment({"PATH": BASE_IMAGE_PATH}).items()
    }
    yield WorkerImage(
        command=final.last("CMD").exec_form(),
        environment=environment,
        workdir=Path(mapped(final.last("WORKDIR").arguments, paths)),
        tmp=tmp,
        read_only=[paths[VENV], paths[APP]],
    )
    shutil.rmtree(tmp, ignore_errors=True)


def scratch_directory() -> Path:
    """The container's /tmp: a directory the image's user may reach (pytest's basetemp is root's)."""
    path = Path(tempfile.gettempdir()) / f"worker-image-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o700)
    return path


def runs_as_the_images_user(paths: list[Path]) -> bool:
    """Root can become the image's user, if that user can reach the image's files, its interpreter,
    the scratch directory and the database's socket, if any (the embedded PostgreSQL's is root's)."""
    return os.geteuid() == 0 and all(reachable_by_others(path.resolve()) for path in paths)


def snapshot(directories: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file under ``directories``: its modification time and size."""
    return {
        str(path): (path.stat().st_mtime_ns, path.stat().st_size)
        for directory in directories
        for path in directory.rglob("*")
    }


@contextlib.contextmanager
def started(image: WorkerImage, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The image's command with its environment and ``env``, until it is ready; killed if left running."""
    uid, gid = (int(part) for part in WORKER_USER.split(":"))
    interpreter = image.read_only[0] / "bin" / "python"
    database_socket = [Path(str(host)) for host in [make_url(env["DATABASE_URL"]).query.get("host")] if host]
    as_user = runs_as_the_images_user([*image.read_only, interpreter, image.tmp.parent, *database_socket])
    if as_user:
        os.chown(image.tmp, uid, gid)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            image.command,
            cwd=image.workdir,
            env={**image.environment, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **({"user": uid, "group": gid, "extra_groups": []} if as_user else {}),
        )
    try:
        wait_until(lambda: " ready." in log_path.read_text() or process.poll() is not None, 60)
        assert process.poll() is None, log_path.read_text()
        if as_user:
            assert Path(f"/proc/{process.pid}").stat().st_uid == uid
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def create_patient(client: Any, index: int) -> str:
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(numbered(JANE, index)))
    assert response.status_code == 201, response.body
    return str(response.json_body["notification_id"])


def status_of(client: Any, notification_id: str) -> str:
    return str(client.http.get(f"/notifications/{notification_id}", headers=AUTH).json_body["status"])


def until(condition: Callable[[], Any], log_path: Path, timeout: float = 30) -> None:
    """``wait_until``, failing with the worker's last lines."""
    try:
        wait_until(condition, timeout)
    except pytest.fail.Exception:
        log_end = log_path.read_text()[-4000:]
        pytest.fail(f"condition not met within {timeout} s; the worker's log ends:\n{log_end}")


def waiting_on_a_lock() -> bool:
    with get_engine().connect() as connection:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(connection.execute(text(query)).scalar_one())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_images_command_delivers_and_stops_warm_on_sigterm(
    client: Any,
    notifying_app: Callable[..., None],
    postgres_url: str,
    redis_url: str,
    worker_image: WorkerImage,
    tmp_path: Path,
) -> None:
    # GIVEN the image's command, with what its task definition adds, on real PostgreSQL and Redis
    task_definition = {
        "APP_STAGE": "prod",
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "NOTIFY_PROVIDER": "log",
    }
    before = snapshot(worker_image.read_only)
    log_path = tmp_path / "worker.log"
    # and two patients created through the API (each outbox hands its notification to Redis), the
    # second one's notification row held locked, so that delivering it keeps the worker busy
    first, second = create_patient(client, 0), create_patient(client, 1)
    with get_engine().connect() as blocker:
        blocker.execute(text("SELECT id FROM notifications WHERE id = :id FOR UPDATE"), {"id": second})

        # WHEN the worker starts
        with started(worker_image, task_definition, log_path) as worker:
            # THEN it delivers the first, and waits inside the second delivery
            until(lambda: status_of(client, first) == "delivered", log_path)
            until(waiting_on_a_lock, log_path)

            # WHEN it gets SIGTERM, as from ECS, and the row is let go after its warm shutdown began
            worker.send_signal(signal.SIGTERM)
            until(lambda: "Warm shutdown" in log_path.read_text(), log_path)
            blocker.rollback()

            # THEN it finishes that delivery and exits 0 within the task definition's stop timeout
            assert worker.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS) == 0, log_path.read_text()
    assert status_of(client, second) == "delivered"
    sent = [line for line in parse_json_lines(log_path.read_text()) if line["message"] == "notification sent"]
    assert sorted((line["notification_id"], line["channel"]) for line in sent) == sorted(
        (nid, channel) for nid in (first, second) for channel in ("email", "sms")
    )
    # and it wrote nothing to its code or its venv (the image's root file system is read-only)
    assert snapshot(worker_image.read_only) == before
