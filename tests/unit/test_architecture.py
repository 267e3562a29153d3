"""chalicelib's import directions: the edge knows the features, the features never know the edge.

Every module under chalicelib/ is parsed with ``ast``: imports at the top and inside functions,
``import x`` and ``from x import y``, relative ones resolved. Each import is held against the
rule of the part the module belongs to (PARTS, most specific part first) and against the rules
for every module (NEVER_IMPORTED, EDGE_ONLY). A module no part claims is a failure too, so a
new package gets its rule when it is created.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.config.settings import PROJECT_ROOT

KERNEL = (
    "chalicelib.errors",
    # The scope names: a vocabulary configuration (token entries) and the edge (routes) both use.
    "chalicelib.scopes",
    "chalicelib.validation",
    "chalicelib.shapes",
    "chalicelib.paging",
    "chalicelib.config",
    "chalicelib.observability",
)
FEATURES = (
    "chalicelib.patients",
    "chalicelib.notifications",
    "chalicelib.audit",
    "chalicelib.health",
    "chalicelib.access",
)
QUERIES = tuple(f"{feature}.queries" for feature in FEATURES)
EDGE = "chalicelib.http"
# The FHIR face: the edge's second shape of the same services (FHIR resources, OperationOutcomes).
FHIR_FACE = "chalicelib.fhir"
SERVICE_LAYER = "chalicelib.service_layer"
BOOTSTRAP = "chalicelib.bootstrap"


@dataclass(frozen=True)
class Part:
    name: str
    modules: tuple[str, ...]  # the modules and packages that make up this part
    may_import: tuple[str, ...]  # what of chalicelib they may import (modules and packages)


# Package -> what it may import from chalicelib. The most specific part claiming a module is its part.
PARTS = (
    Part("the HTTP edge", (EDGE,), ("chalicelib",)),
    Part("the FHIR face of the edge", (FHIR_FACE,), ("chalicelib",)),
    Part("a feature", FEATURES, (*KERNEL, "chalicelib.storage", SERVICE_LAYER, *FEATURES)),
    Part("a feature's queries", QUERIES, (*KERNEL, "chalicelib.storage.models")),
    # The unit of work composes the features' repositories and the audit trail's part in a commit.
    Part(
        "the service layer",
        (SERVICE_LAYER,),
        (*KERNEL, "chalicelib.storage", SERVICE_LAYER, *QUERIES, "chalicelib.audit.recording"),
    ),
    # `python -m chalicelib.storage.migrate` is a command: like every entry point, it asks the bootstrap.
    Part(
        "the migration command", ("chalicelib.storage.migrate",), (*KERNEL, "chalicelib.storage", BOOTSTRAP)
    ),
    # Engines, sessions, connections, models and migrations: no feature.
    Part("storage", ("chalicelib.storage",), (*KERNEL, "chalicelib.storage")),
    # The one reader of the environment: it knows the settings, and provides the adapters' slices.
    Part("the composition root", (BOOTSTRAP,), KERNEL),
    Part("the kernel", KERNEL, KERNEL),
    Part("the package itself", ("chalicelib",), ()),
)
# What no module of chalicelib imports: the code that uses it, or that is never deployed with it.
NEVER_IMPORTED = ("functions", "app", "local_worker", "local_server", "scripts", "deploy", "bench", "tests")
# Libraries only the edge may import.
EDGE_ONLY = ("chalice",)


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes)


def part_of(module: str) -> Part | None:
    claims = [
        (len(prefix), part)
        for part in PARTS
        for prefix in part.modules
        # the package itself claims only its own __init__, not every module under it
        if module == prefix or (module.startswith(f"{prefix}.") and prefix != "chalicelib")
    ]
    return max(claims, key=lambda claim: claim[0])[1] if claims else None


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    imported: str  # the module (or package) it imports
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path, modules: set[str]) -> Iterator[Import]:
    """Every import in the file, anywhere in it, as the absolute module it names."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                # `from package import module` imports the module; `from module import name`, the module
                submodule = f"{source}.{alias.name}"
                yield Import(module, submodule if submodule in modules else source, node.lineno)


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str  # empty when no part claims the module
    line: int
    why: str

    def __str__(self) -> str:
        if not self.imported:
            return f"{self.module}: {self.why}"
        return f"{self.module} (line {self.line}) imports {self.imported}: {self.why}"


def import_violations(root: Path) -> list[Violation]:
    """Each import under ``root``/chalicelib that breaks a rule: module, line, import, and why."""
    paths = sorted((root / "chalicelib").rglob("*.py"))
    modules = {module_name(path, root) for path in paths}
    violations = []
    for path in paths:
        module = module_name(path, root)
        part = part_of(module)
        if part is None:
            violations.append(Violation(module, "", 0, "no part of PARTS claims it; give its package a rule"))
            continue
        for found in imports_of(path, root, modules):
            why = reason_against(found.imported, module, part)
            if why:
                violations.append(Violation(module, found.imported, found.line, why))
    return violations


def reason_against(imported: str, module: str, part: Part) -> str | None:
    top = imported.split(".")[0]
    if top in NEVER_IMPORTED:
        return f"nothing in chalicelib imports {top}"
    if top in EDGE_ONLY and not within(module, (EDGE, FHIR_FACE)):
        return f"only {EDGE} imports {top}"
    if top == "chalicelib" and not within(imported, part.may_import):
        return f"{part.name} may import only {', '.join(part.may_import) or 'nothing of chalicelib'}"
    return None


def test_chalicelib_imports_only_in_the_allowed_directions() -> None:
    violations = import_violations(PROJECT_ROOT)

    assert not violations, "\n".join(map(str, violations))


FORBIDDEN = [
    ("patients/service.py", "import app\n", "chalicelib.patients.service", "app", "nothing in chalicelib"),
    (
        "notifications/service.py",
        "def _edge() -> None:\n    import chalice.app\n",
        "chalicelib.notifications.service",
        "chalice.app",
        "only chalicelib.http imports chalice",
    ),
    (
        "audit/service.py",
        "from ..http import routes\n",
        "chalicelib.audit.service",
        "chalicelib.http.routes",
        "a feature",
    ),
    (
        "errors.py",
        "from chalicelib.patients import service\n",
        "chalicelib.errors",
        "chalicelib.patients.service",
        "the kernel",
    ),
    (
        "patients/queries.py",
        "from chalicelib.service_layer.unit_of_work import UnitOfWork\n",
        "chalicelib.patients.queries",
        "chalicelib.service_layer.unit_of_work",
        "a feature's queries",
    ),
    (
        "storage/database.py",
        "from .. import notifications\n",
        "chalicelib.storage.database",
        "chalicelib.notifications",
        "storage",
    ),
    (
        "storage/database.py",
        "from chalicelib.audit.recording import record_changes\n",
        "chalicelib.storage.database",
        "chalicelib.audit.recording",
        "storage",
    ),
    (
        "service_layer/unit_of_work.py",
        "from chalicelib.patients import service\n",
        "chalicelib.service_layer.unit_of_work",
        "chalicelib.patients.service",
        "the service layer",
    ),
    (
        "health/service.py",
        "from functions import get_health\n",
        "chalicelib.health.service",
        "functions",
        "nothing",
    ),
]


@pytest.mark.parametrize(("path", "source", "module", "imported", "why"), FORBIDDEN)
def test_a_forbidden_import_is_named_with_its_module(
    tmp_path: Path, path: str, source: str, module: str, imported: str, why: str
) -> None:
    # GIVEN a copy of the tree, with one forbidden import added to one module
    shutil.copytree(PROJECT_ROOT / "chalicelib", tmp_path / "chalicelib")
    before = set(map(str, import_violations(tmp_path)))
    with (tmp_path / "chalicelib" / path).open("a") as file:
        file.write(f"\n\n{source}")

    # WHEN the checker reads it
    added = set(map(str, import_violations(tmp_path))) - before

    # THEN that import, and only it, is reported, naming the module and what it imported
    [violation] = added
    assert violation.startswith(f"{module} (line ")
    assert f" imports {imported}: " in violation and why in violation


def test_a_package_without_a_rule_is_reported(tmp_path: Path) -> None:
    shutil.copytree(PROJECT_ROOT / "chalicelib", tmp_path / "chalicelib")
    before = set(map(str, import_violations(tmp_path)))
    (tmp_path / "chalicelib" / "metrics").mkdir()
    (tmp_path / "chalicelib" / "metrics" / "__init__.py").write_text("")

    added = set(map(str, import_violations(tmp_path))) - before

    assert added == {"chalicelib.metrics: no part of PARTS claims it; give its package a rule"}


def test_the_architecture_map_names_every_part_of_chalicelib() -> None:
    # GIVEN the architecture map (the table under "## Layers" in docs/architecture.md)
    architecture = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    section = architecture.split("## Layers of `chalicelib/`", 1)[1].split("\n## ", 1)[0]

    # THEN each package and top-level module of chalicelib is named there, as the tree has it
    chalicelib = PROJECT_ROOT / "chalicelib"
    parts = [f"`{p.name}/`" for p in chalicelib.iterdir() if (p / "__init__.py").exists()]
    parts += [f"`{p.name}`" for p in chalicelib.glob("*.py") if p.name != "__init__.py"]
    assert [part for part in sorted(parts) if part not in section] == []


def test_only_the_bootstrap_reads_the_settings_from_the_environment() -> None:
    # GIVEN every module that runs in a process of ours (the deployed code, the worker, the commands)
    readers = []
    for directory in ("chalicelib", "functions", "local_worker", "scripts"):
        for path in sorted((PROJECT_ROOT / directory).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                called = node.func if isinstance(node, ast.Call) else None
                name = getattr(called, "id", None) or getattr(called, "attr", None)
                if name in ("load_settings", "load_auth_settings"):
                    readers.append(str(path.relative_to(PROJECT_ROOT)))
    # THEN only the bootstrap turns the environment into Settings: everything else is handed them
    assert sorted(set(readers)) == ["chalicelib/bootstrap.py"]


def test_neither_chalicelib_nor_functions_import_the_local_server() -> None:
    # local_server is left out of the Lambda zip: only app.py (under plain chalice local) and the
    # commands that start a server may import it.
    found = []
    for package in ("chalicelib", "functions"):
        paths = sorted((PROJECT_ROOT / package).rglob("*.py"))
        modules = {module_name(path, PROJECT_ROOT) for path in paths}
        for path in paths:
            found += [
                f"{i.module} (line {i.line}) imports {i.imported}"
                for i in imports_of(path, PROJECT_ROOT, modules)
                if within(i.imported, ("local_server",))
            ]

    assert found == []
