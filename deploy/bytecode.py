"""Put bytecode in the Lambda zip, so a cold start imports instead of compiling.

``chalice package`` ships sources only, each dated 1980-01-01, and Lambda's
/var/task is read-only: every cold start compiled every imported module again
(~820 ms against ~220 ms for Chalice + SQLAlchemy ORM, ../shared/FACTS.md).
We compile the unzipped tree with ``unchecked-hash`` pycs, which the import
system uses without comparing them to the sources' dates, and zip it again.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Where Lambda unpacks the zip: tracebacks then name the files where they live.
LAMBDA_TASK_ROOT = "/var/task"
# Lambda's limits for a zip uploaded directly, read as decimal megabytes to be safe.
MAX_ZIPPED_BYTES = 50_000_000
MAX_UNZIPPED_BYTES = 250_000_000
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Deflate's best: a few percent smaller than the default for a second more of packaging.
ZIP_COMPRESSLEVEL = 9


class ArtifactError(RuntimeError):
    """The artifact cannot be built as Lambda needs it."""


@dataclass(frozen=True)
class ArtifactSize:
    zipped_before: int
    zipped: int
    unzipped: int
    compiled_modules: int
    pruned_files: int = 0
    pruned_bytes: int = 0


def check_runtime_matches_interpreter(runtime: str) -> None:
    """Pycs are only read by the Python minor version that wrote them: refuse any other."""
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != ours:
        raise ArtifactError(
            f"the template declares runtime {runtime} but this is {ours}: its bytecode would be"
            f" ignored by Lambda. Package from a {runtime} virtualenv"
        )


def add_bytecode(zip_path: Path, prune: Callable[[Path], tuple[int, int]] | None = None) -> ArtifactSize:
    """Rewrite ``zip_path`` with an unchecked-hash pyc beside every module; reproducible byte for byte.

    ``prune``, when given, first removes files from the unzipped tree and says how many, and their bytes.
    """
    zipped_before = zip_path.stat().st_size
    with tempfile.TemporaryDirectory(prefix="lambda-artifact-") as workdir:
        tree = Path(workdir) / "task"
        with zipfile.ZipFile(zip_path) as archive:
            modes = {info.filename: info.external_attr for info in archive.infolist()}
            archive.extractall(tree)
        pruned_files, pruned_bytes = prune(tree) if prune is not None else (0, 0)
        compiled = _compile(tree)
        rebuilt = Path(workdir) / "deployment.zip"
        unzipped = _zip_tree(tree, rebuilt, modes)
        shutil.move(rebuilt, zip_path)
    size = ArtifactSize(
        zipped_before, zip_path.stat().st_size, unzipped, compiled, pruned_files, pruned_bytes
    )
    check_lambda_limits(size)
    return size


def _compile(tree: Path) -> int:
    sources = sum(1 for _ in tree.rglob("*.py"))
    succeeded = compileall.compile_dir(
        tree,
        ddir=LAMBDA_TASK_ROOT,
        quiet=1,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not succeeded:
        raise ArtifactError("some modules of the artifact do not compile (see above)")
    return sources


def _zip_tree(tree: Path, destination: Path, modes: dict[str, int]) -> int:
    """Zip ``tree`` in name order with fixed dates, so equal inputs give equal zips."""
    unzipped = 0
    file_mode = 0o100644 << 16
    # An entry written from a ZipInfo takes its compression from the ZipInfo and writestr alone.
    with zipfile.ZipFile(destination, "w") as archive:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            name = path.relative_to(tree).as_posix()
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = modes.get(name, file_mode)
            data = path.read_bytes()
            unzipped += len(data)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=ZIP_COMPRESSLEVEL)
    return unzipped


def check_lambda_limits(size: ArtifactSize) -> None:
    if size.zipped > MAX_ZIPPED_BYTES or size.unzipped > MAX_UNZIPPED_BYTES:
        raise ArtifactError(
            f"artifact is {size.zipped / 1e6:.1f} MB zipped / {size.unzipped / 1e6:.1f} MB unzipped;"
            f" Lambda takes at most {MAX_ZIPPED_BYTES / 1e6:.0f} MB / {MAX_UNZIPPED_BYTES / 1e6:.0f} MB"
        )
