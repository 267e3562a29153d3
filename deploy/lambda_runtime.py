"""A stand-in for the Lambda Python runtime: ``python [-I -S -B] lambda_runtime.py TASK_ROOT``.

Its import path is TASK_ROOT (an unzipped artifact, or the project checkout)
ahead of what the interpreter brings; under ``-I -S`` that is the standard
library only, as in Lambda, where the runtime adds nothing the app may import.
It reads one JSON request a line from stdin and answers one JSON line:

* ``{"handler": "app.app", "event": {...}}`` -> ``{"result": ...}`` or ``{"error": "<traceback>"}``
* ``{"report": true}`` -> the task root's modules compiled from source (no usable
  bytecode), those without a bytecode file, every module imported from outside
  the task root and the standard library, all module names, peak memory (kB) and
  the CPU time the process has used.

``LambdaContainer`` starts and drives one such process for tests and benches.
Standard library only: it must run where the project's packages are not installed.
"""

from __future__ import annotations

import importlib
import importlib._bootstrap_external as bootstrap_external
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import sysconfig
import time
import traceback
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any


class LambdaContext:
    function_name = "telehealth-api-prod"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:telehealth-api-prod"
    log_group_name = "/aws/lambda/telehealth-api-prod"
    log_stream_name = "2026/11/25/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class CompileRecorder:
    """Records every source file the import system compiles.

    ``SourceLoader.source_to_code`` is the one place it does, called only when a
    module has no usable bytecode.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._source_to_code = bootstrap_external.SourceLoader.source_to_code
        recorder = self

        def source_to_code(loader: Any, data: Any, path: Any, *, _optimize: int = -1) -> Any:
            recorder.paths.append(str(path))
            return recorder._source_to_code(loader, data, path, _optimize=_optimize)

        bootstrap_external.SourceLoader.source_to_code = source_to_code  # type: ignore[method-assign,assignment]


def unpack_task_root(deployment_zip: Path, task_root: Path) -> Path:
    """Unzip the artifact into ``task_root`` and make it read-only, as Lambda's /var/task is."""
    with zipfile.ZipFile(deployment_zip) as archive:
        archive.extractall(task_root)
    for directory, _dirs, files in os.walk(task_root):
        for name in files:
            os.chmod(os.path.join(directory, name), 0o444)
    for directory, _dirs, _files in os.walk(task_root, topdown=False):
        os.chmod(directory, 0o555)  # noqa: S103 - read and search, no write
    return task_root


def invoke(handler: str, event: dict[str, Any]) -> Any:
    module_name, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    return function(event, LambdaContext())


def report(task_root: str, compiled: CompileRecorder) -> dict[str, Any]:
    cpu_seconds = time.process_time()  # since the interpreter started, before this report adds to it
    stdlib = sysconfig.get_paths()["stdlib"]
    files = {
        name: str(module.__file__)
        for name, module in list(sys.modules.items())
        if name != "__main__" and getattr(module, "__file__", None)
    }
    cached = {name: getattr(sys.modules[name], "__cached__", None) for name in files}
    return {
        "compiled_from_source": [path for path in compiled.paths if path.startswith(task_root)],
        "missing_bytecode": sorted(
            name
            for name, path in files.items()
            if path.startswith(task_root) and path.endswith(".py") and not Path(cached[name] or "").is_file()
        ),
        "imported_from_outside": sorted(
            name for name, path in files.items() if not path.startswith((task_root, stdlib))
        ),
        "modules": sorted(sys.modules),
        "peak_rss_kb": peak_rss_kb(),
        "cpu_seconds": cpu_seconds,
    }


def peak_rss_kb() -> int:
    """This process image's peak resident memory.

    ``ru_maxrss`` would do, but Linux carries it over from the parent that forked
    us (a test runner or bench with everything loaded); VmHWM starts at exec.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


class InvocationError(RuntimeError):
    """The handler raised (or could not be imported); the message is the traceback."""


EMULATED_IDEMPOTENCY_KEY_SECRET = secrets.token_hex(32)


def lambda_environment(**variables: str) -> dict[str, str]:
    """What a function's process sees: its configuration, no PYTHON* or project variables.

    The API's functions read IDEMPOTENCY_KEY_SECRET from their secret; here every container of this
    process shares one made for it, as every container of a deployment shares the secret's value.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_FUNCTION_NAME": LambdaContext.function_name,
        "IDEMPOTENCY_KEY_SECRET": EMULATED_IDEMPOTENCY_KEY_SECRET,
        **variables,
    }


class LambdaContainer:
    """One cold Lambda container: a process that imports the handler on its first event.

    ``isolated`` runs it as Lambda does, with only ``task_root`` and the standard
    library importable and no bytecode written (``-I -S -B``); without it, the
    interpreter's own packages are importable too (a development environment).
    """

    def __init__(
        self, task_root: Path, env: Mapping[str, str], *, isolated: bool = True, log_path: Path | None = None
    ) -> None:
        flags = ["-I", "-S", "-B"] if isolated else []
        # The function's log stream (the runtime's root handler writes there): ``log_path``, if given.
        log = log_path.open("ab") if log_path is not None else None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, *flags, str(Path(__file__).resolve()), str(task_root)],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        if log is not None:
            log.close()

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise InvocationError(f"the runtime exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise InvocationError(answer["error"])
        return answer

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        return self.request({"handler": handler, "event": event})["result"]

    def report(self) -> dict[str, Any]:
        return self.request({"report": True})

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> LambdaContainer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def main() -> None:
    task_root = str(Path(sys.argv[1]).resolve())
    sys.path.insert(0, task_root)
    # As the runtime does: a handler on the root logger writing to the function's log stream
    # (stderr here; the process's real stdout carries this stand-in's answers).
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
    # And what the function prints (EMF metrics lines) goes there too, as in Lambda.
    answers, sys.stdout = sys.stdout, sys.stderr
    compiled = CompileRecorder()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request.get("report"):
                answer = report(task_root, compiled)
            else:
                answer = {"result": invoke(request["handler"], request["event"])}
        except BaseException:  # the caller reads the traceback
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
