"""deploy.bytecode on a small zip: unchecked-hash pycs, reproducible output, loud refusals."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.bytecode import (
    MAX_ZIPPED_BYTES,
    ArtifactError,
    ArtifactSize,
    add_bytecode,
    check_lambda_limits,
    check_runtime_matches_interpreter,
)

UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: hash-based, do not check the source


def small_artifact(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", "import pkg.mod\n")
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/mod.py", "VALUE = 42\n")
        archive.writestr("pkg/data.json", "{}")
    return path


def test_every_module_gets_an_unchecked_hash_pyc(tmp_path: Path) -> None:
    artifact = small_artifact(tmp_path / "deployment.zip")

    size = add_bytecode(artifact)

    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(artifact) as archive:
        names = set(archive.namelist())
        pyc = archive.read(f"pkg/__pycache__/mod.{tag}.pyc")
        compressions = {info.compress_type for info in archive.infolist()}
    assert {f"__pycache__/app.{tag}.pyc", f"pkg/__pycache__/__init__.{tag}.pyc"} <= names
    assert "pkg/data.json" in names
    assert int.from_bytes(pyc[4:8], "little") == UNCHECKED_HASH_FLAGS
    assert size.compiled_modules == 3 and size.zipped > size.zipped_before
    assert compressions == {zipfile.ZIP_DEFLATED}


def test_a_prune_runs_on_the_unzipped_tree_before_anything_is_compiled(tmp_path: Path) -> None:
    artifact = small_artifact(tmp_path / "deployment.zip")

    def prune(tree: Path) -> tuple[int, int]:
        removed = tree / "pkg" / "mod.py"
        size = removed.stat().st_size
        removed.unlink()
        return 1, size

    size = add_bytecode(artifact, prune=prune)

    with zipfile.ZipFile(artifact) as archive:
        names = set(archive.namelist())
    assert not any("mod." in name for name in names), names
    assert (size.compiled_modules, size.pruned_files, size.pruned_bytes) == (2, 1, len("VALUE = 42\n"))


def test_the_rebuilt_zip_is_reproducible(tmp_path: Path) -> None:
    first = small_artifact(tmp_path / "first.zip")
    second = small_artifact(tmp_path / "second.zip")

    add_bytecode(first)
    add_bytecode(second)

    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_another_runtime_than_this_python_is_refused() -> None:
    check_runtime_matches_interpreter(f"python{sys.version_info.major}.{sys.version_info.minor}")

    with pytest.raises(ArtifactError, match=r"declares runtime python3\.99"):
        check_runtime_matches_interpreter("python3.99")


def test_an_artifact_over_lambdas_limits_is_refused() -> None:
    with pytest.raises(ArtifactError, match="Lambda takes at most 50 MB"):
        check_lambda_limits(ArtifactSize(0, MAX_ZIPPED_BYTES + 1, 100, 1))
