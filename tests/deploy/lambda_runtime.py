"""A stand-in for the Lambda Python runtime, run as ``python -I -S lambda_runtime.py ARTIFACT_DIR``.

Its import path is the unzipped artifact and the standard library, nothing else.
It reads one JSON request a line from stdin and answers one JSON line:

* ``{"handler": "app.app", "event": {...}}`` -> ``{"result": ...}`` or ``{"error": "..."}``
* ``{"report": true}`` -> which artifact modules were compiled from source, and
  every imported module that came from outside the artifact and the standard library.

It uses only the standard library (it must run without the project's packages).
"""

import importlib
import importlib._bootstrap_external as bootstrap_external
import json
import sys
import sysconfig
import traceback
import uuid
from pathlib import Path

ARTIFACT = str(Path(sys.argv[1]).resolve())
sys.path.insert(0, ARTIFACT)
STDLIB = sysconfig.get_paths()["stdlib"]

compiled_from_source = []
_source_to_code = bootstrap_external.SourceLoader.source_to_code


def _counting_source_to_code(self, data, path, *, _optimize=-1):
    # The one place the import system compiles a source file: it is called only
    # when no usable bytecode exists for it.
    compiled_from_source.append(str(path))
    return _source_to_code(self, data, path, _optimize=_optimize)


bootstrap_external.SourceLoader.source_to_code = _counting_source_to_code


class LambdaContext:
    function_name = "telehealth-api-prod"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:telehealth-api-prod"
    log_group_name = "/aws/lambda/telehealth-api-prod"
    log_stream_name = "2026/11/25/[$LATEST]0123456789abcdef"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return 30_000


def invoke(handler, event):
    module_name, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    return function(event, LambdaContext())


def report():
    outside = sorted(
        name
        for name, module in list(sys.modules.items())
        if name != "__main__"
        and getattr(module, "__file__", None)
        and not module.__file__.startswith((ARTIFACT, STDLIB))
    )
    missing_bytecode = sorted(
        name
        for name, module in list(sys.modules.items())
        if str(getattr(module, "__file__", "") or "").startswith(ARTIFACT)
        and module.__file__.endswith(".py")
        and not Path(module.__cached__ or "").is_file()
    )
    return {
        "compiled_from_source": [path for path in compiled_from_source if path.startswith(ARTIFACT)],
        "imported_from_outside": outside,
        "missing_bytecode": missing_bytecode,
        "modules": sorted(sys.modules),
    }


for line in sys.stdin:
    request = json.loads(line)
    try:
        if request.get("report"):
            answer = report()
        else:
            answer = {"result": invoke(request["handler"], request["event"])}
    except BaseException:  # noqa: BLE001 - the test reads the traceback
        answer = {"error": traceback.format_exc()}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
