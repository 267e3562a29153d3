"""What the Lambda artifact leaves out of what ``chalice package`` zips, and why: the one list.

``chalice package`` ships every file of every wheel ``requirements.txt`` pulls in:
Celery's interactive shell, the Swagger Editor, dialects of databases we never
connect to, C sources. ``prune_tree`` removes what is declared here from the
unzipped tree before ``deploy.bytecode`` compiles and zips it again.

What Lambda runs is the import closure of each function's handler module
(``import_closure``: a static walk with ``modulefinder`` from the artifact's own
root, which follows imports inside functions too, so lazily imported modules
count). ``unreached_top_levels`` lists what the zip holds beyond it and
``SHIPPED_UNREACHED``; the deploy tests require that list to be empty, so a new
requirement nothing imports fails them until it is used, pruned or excused.

Three lists steer the walk, each entry with its reason:

* ``NOT_RUN_IN_LAMBDA``: modules an import statement names but no function
  runs (command lines, type checking, optional features we turn off). The
  walk does not enter them; most are pruned. The walk cannot tell a top-level
  import from one in a function never called, so each entry is a claim the
  artifact tests check by running the functions (``click`` was once wrongly
  here: ``celery.app.base`` imports it at the top).
* ``IMPORTED_BY_NAME``: modules loaded from a string (a URL scheme, a class
  path), which no import statement names.
* ``SHIPPED_UNREACHED``: top-level names kept though no import reaches them.
"""

from __future__ import annotations

import modulefinder
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

CELERY_SHELL = "Celery's command line and its interactive shell: the functions only send tasks by name"
SWAGGER_UI_PYTHON = (
    "swagger-ui-py's own Python side (its __init__ is never run: the docs page reads two files)"
)

# Top-level packages and modules removed whole, with their *.dist-info.
PRUNED_TOP_LEVELS: dict[str, str] = {
    "click_repl": CELERY_SHELL,
    "click_didyoumean": CELERY_SHELL,
    "click_plugins": CELERY_SHELL,
    "prompt_toolkit": CELERY_SHELL,
    "wcwidth": CELERY_SHELL + " (prompt_toolkit's)",
    "alembic": "migrations run as a one-off process (docs/deployment.md §4): no function migrates",
    "mako": "Alembic's templates for new revisions",
    "jinja2": SWAGGER_UI_PYTHON,
    "markupsafe": SWAGGER_UI_PYTHON + " (Jinja2's)",
    "yaml": "kombu registers a YAML serializer when it can; Celery here accepts JSON only",
    "_yaml": "PyYAML's C extension",
    "test": "swagger-ui-py's own tests, installed as a top-level package",
    "dns": "email-validator's deliverability check (DNS lookups), which we turn off",
    "cffi": "builds C bindings; at run time cryptography needs only its compiled _cffi_backend",
    "pycparser": "cffi's C parser, for building bindings",
}

# Files removed inside the packages that stay (fnmatch patterns on the path in the zip; ``*`` spans ``/``).
PRUNED_FILES: dict[str, str] = {
    "swagger_ui/*": "Swagger UI in every bundle format, the whole Swagger Editor, source maps, templates",
    "sqlalchemy/dialects/mssql/*": "SQL Server: we connect to SQLite and PostgreSQL only",
    "sqlalchemy/dialects/mysql/*": "MySQL and MariaDB: we connect to SQLite and PostgreSQL only",
    "sqlalchemy/dialects/oracle/*": "Oracle: we connect to SQLite and PostgreSQL only",
    "sqlalchemy/testing/*": "SQLAlchemy's test suite and fixtures",
    "celery/contrib/testing/*": "Celery's test fixtures",
    "sqlalchemy/ext/*": "ORM extensions we do not use (automap, baked, hybrid, serializer...)",
    "kombu/transport/*": "kombu's transports for other brokers than Redis",
    "*.pyx": "Cython sources of compiled modules",
    "*.pxd": "Cython declarations",
    "*.c": "C sources of compiled modules",
    "*.h": "C headers",
    "*.pyi": "type stubs: the runtime never reads them",
    "*.map": "JavaScript source maps",
}
# Exceptions to PRUNED_FILES (patterns alike).
KEPT_FILES: dict[str, str] = {
    "swagger_ui/__init__.py": "importlib.util.find_spec locates the package through it",
    "swagger_ui/static/swagger-ui-bundle.js": "served at /docs/assets/swagger-ui-bundle.js (docs_page.py)",
    "swagger_ui/static/swagger-ui.css": "served at /docs/assets/swagger-ui.css (docs_page.py)",
    "swagger_ui/static/LICENSE": "Swagger UI's licence travels with its code",
    "sqlalchemy/ext/__init__.py": "the package of the one extension we need",
    "sqlalchemy/ext/asyncio/*": "the psycopg dialect imports it",
    "kombu/transport/__init__.py": "resolves the redis:// scheme",
    "kombu/transport/base.py": "every transport's base",
    "kombu/transport/virtual/*": "the Redis transport's base",
    "kombu/transport/redis.py": "our broker's transport",
    "kombu/transport/native_delayed_delivery.py": "kombu.transport.base imports it",
}

NOT_RUN_IN_LAMBDA: dict[str, str] = {
    "celery.bin": CELERY_SHELL + " (Celery.worker_main/start import it)",
    "local_server": "app.py imports it under plain chalice local only; outside what chalice packages",
    "chalicelib.storage.migrate": PRUNED_TOP_LEVELS["alembic"],
    "dns": PRUNED_TOP_LEVELS["dns"] + " (validate_email imports it for type checking only)",
    "yaml": PRUNED_TOP_LEVELS["yaml"],
    "cffi": "billiard tries it for its Windows/PyPy paths; cryptography's binary loads _cffi_backend",
}

IMPORTED_BY_NAME: dict[str, str] = {
    "kombu.transport.redis": "kombu's transport for the redis:// broker URL",
    "celery.backends.redis": "Celery's result backend for a redis:// URL (task states)",
    "celery.loaders.app": "Celery's default loader class path",
    "celery.app.amqp": "Celery.amqp_cls",
    "celery.app.control": "Celery.control_cls",
    "celery.app.events": "Celery.events_cls",
    "celery.app.log": "Celery.log_cls",
    "celery.app.registry": "Celery.registry_cls",
    "sqlalchemy.dialects.sqlite.pysqlite": "the sqlite:// URL's driver",
    "sqlalchemy.dialects.postgresql.psycopg": "the postgresql+psycopg:// URL's driver",
}

SHIPPED_UNREACHED: dict[str, str] = {
    "swagger_ui": "a data package: the docs page reads its two static files, never imports it",
    "_cffi_backend": "cryptography's compiled core loads it (RS256 tokens: README, JWT_RS256_PUBLIC_KEY)",
}


class PruneResult(NamedTuple):
    files: int
    bytes: int


def is_pruned(name: str) -> bool:
    """True when the file at ``name`` (a path in the zip) is left out of the artifact."""
    if any(fnmatchcase(name, pattern) for pattern in KEPT_FILES):
        return False
    top = name.split("/", 1)[0]
    if _top_level_of(top) in PRUNED_TOP_LEVELS:
        return True
    return any(fnmatchcase(name, pattern) for pattern in PRUNED_FILES)


def prune_tree(tree: Path) -> PruneResult:
    """Delete from ``tree`` (an unzipped artifact) every file ``is_pruned`` names, then empty folders."""
    files = size = 0
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        if is_pruned(path.relative_to(tree).as_posix()):
            files += 1
            size += path.stat().st_size
            path.unlink()
    for folder in sorted((p for p in tree.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    metadata = _drop_pruned_dist_info(tree)
    return PruneResult(files + metadata.files, size + metadata.bytes)


def _top_level_of(entry: str) -> str:
    """The import name of a top-level entry of the zip: ``x.py``, ``x.cpython-311-….so``, ``x.libs``."""
    return entry.split(".", 1)[0]


def _drop_pruned_dist_info(tree: Path) -> PruneResult:
    """Remove the metadata of distributions whose code is gone (every top-level it installed pruned)."""
    files = size = 0
    for dist_info in sorted(tree.glob("*.dist-info")):
        record = dist_info / "RECORD"
        if not record.is_file():
            continue
        tops = {
            _top_level_of(line.split(",", 1)[0].split("/", 1)[0])
            for line in record.read_text().splitlines()
            if line and not line.split("/", 1)[0].endswith((".dist-info", ".data")) and ".." not in line
        }
        if tops and tops <= set(PRUNED_TOP_LEVELS):
            removed = [p for p in dist_info.rglob("*") if p.is_file()]
            files += len(removed)
            size += sum(p.stat().st_size for p in removed)
            shutil.rmtree(dist_info)
    return PruneResult(files, size)


def importable_top_levels(tree: Path) -> set[str]:
    """The names ``import`` finds at the top of ``tree``: packages, modules, extension modules."""
    names = set()
    for entry in tree.iterdir():
        if entry.name in {"__pycache__"} or entry.name.endswith((".dist-info", ".libs", ".data")):
            continue
        if entry.is_dir() and any(p.suffix in {".py", ".so"} for p in entry.rglob("*")):
            names.add(entry.name)  # a namespace package too: code below, no __init__.py
        elif entry.suffix in {".py", ".so"}:
            names.add(_top_level_of(entry.name))
    return names


@dataclass(frozen=True)
class ImportClosure:
    modules: frozenset[str]
    # Modules an import names, found nowhere in the tree (stdlib and Lambda's boto3 included).
    missing: frozenset[str]

    @property
    def top_levels(self) -> set[str]:
        return {name.split(".", 1)[0] for name in self.modules}


def import_closure(
    tree: Path, entry_modules: Iterable[str], by_name: Iterable[str] = tuple(IMPORTED_BY_NAME)
) -> ImportClosure:
    """Every module of ``tree`` that importing ``entry_modules`` and ``by_name`` can reach.

    Only ``tree`` is searched: what the standard library or the Lambda runtime provides is
    reported missing, as is anything pruned that an import still names. Raises ImportError
    when an entry module, or one imported by name, is not in ``tree``.
    """
    finder = modulefinder.ModuleFinder(path=[str(tree)], excludes=list(NOT_RUN_IN_LAMBDA))
    for name in [*entry_modules, *by_name]:
        finder.import_hook(name)
    missing, _maybe_attributes = finder.any_missing_maybe()
    return ImportClosure(
        frozenset(name for name in finder.modules if name != "__main__"),
        frozenset(name for name in missing if not _not_run_in_lambda(name)),
    )


def _not_run_in_lambda(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in NOT_RUN_IN_LAMBDA)


def unreached_top_levels(tree: Path, closure: ImportClosure) -> set[str]:
    """Top-level names in ``tree`` that ``closure`` misses and SHIPPED_UNREACHED does not excuse."""
    return importable_top_levels(tree) - closure.top_levels - set(SHIPPED_UNREACHED)


def pruned_but_imported(closure: ImportClosure) -> set[str]:
    """Modules an import in the closure names that a prune rule removed: each would fail at run time."""
    return {
        name
        for name in closure.missing
        if any(is_pruned(name.replace(".", "/") + suffix) for suffix in (".py", "/__init__.py"))
    }
