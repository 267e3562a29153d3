"""deploy.artifact_contents on a small tree: the reachability check and the prune rules.

The built artifact itself is held to them in tests/deploy/test_artifact_contents.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from chalicelib.config.settings import PROJECT_ROOT
from deploy.artifact_contents import (
    NOT_RUN_IN_LAMBDA,
    import_closure,
    importable_top_levels,
    is_pruned,
    prune_tree,
    pruned_but_imported,
    unreached_top_levels,
)


def small_task_root(root: Path) -> Path:
    files = {
        "app.py": "import used\n\ndef later():\n    import lazily_used\n",
        "used/__init__.py": "from used import part\n",
        "used/part.py": "",
        "lazily_used.py": "",
        "unused_requirement/__init__.py": "",
        "unused_namespace/part/__init__.py": "",
        "unused_requirement-1.0.dist-info/RECORD": "unused_requirement/__init__.py,,\n",
        "wcwidth/__init__.py": "",
        "wcwidth-0.9.dist-info/RECORD": "wcwidth/__init__.py,,\n",
        "swagger_ui/__init__.py": "import jinja2\n",
        "swagger_ui/static/swagger-ui.css": "body {}",
        "swagger_ui/static/swagger-editor.js": "editor()",
        "swagger_ui/static/swagger-ui.js.map": "{}",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_package_no_import_reaches_is_reported_by_name(tmp_path: Path) -> None:
    # GIVEN a requirement nothing imports, beside modules imported at the top and inside a function
    root = small_task_root(tmp_path)

    # WHEN the closure of the handler's module is taken
    closure = import_closure(root, ["app"], by_name=())

    # THEN what the handler imports, even lazily, is reached; the unused requirement is reported;
    # the docs page's data package is excused (SHIPPED_UNREACHED) and wcwidth is not even looked at
    assert {"app", "used", "used.part", "lazily_used"} <= closure.modules
    assert unreached_top_levels(root, closure) == {"unused_requirement", "unused_namespace", "wcwidth"}
    prune_tree(root)
    assert unreached_top_levels(root, closure) == {"unused_requirement", "unused_namespace"}


def test_pruning_keeps_the_docs_assets_and_drops_the_rest_with_its_metadata(tmp_path: Path) -> None:
    root = small_task_root(tmp_path)

    result = prune_tree(root)

    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("swagger_ui/**/*") if p.is_file()) == [
        "swagger_ui/__init__.py",
        "swagger_ui/static/swagger-ui.css",
    ]
    assert not (root / "wcwidth").exists() and not (root / "wcwidth-0.9.dist-info").exists()
    assert (root / "unused_requirement-1.0.dist-info").is_dir(), "only pruned distributions lose theirs"
    assert result.files == 4
    assert "wcwidth" not in importable_top_levels(root)


def test_prune_rules() -> None:
    assert is_pruned("sqlalchemy/dialects/mssql/base.py")
    assert not is_pruned("sqlalchemy/dialects/postgresql/psycopg.py")
    assert is_pruned("sqlalchemy/ext/automap.py") and not is_pruned("sqlalchemy/ext/asyncio/engine.py")
    assert is_pruned("kombu/transport/SQS/__init__.py") and not is_pruned("kombu/transport/redis.py")
    assert is_pruned("sqlalchemy/util/_collections_cy.c") and not is_pruned(
        "sqlalchemy/util/_collections_cy.py"
    )
    assert is_pruned("prompt_toolkit/__init__.py") and not is_pruned("celery/app/base.py")


def test_a_pruned_module_that_an_import_still_names_is_caught(tmp_path: Path) -> None:
    # GIVEN a handler that imports a module of a pruned dialect, and the tree pruned
    (tmp_path / "app.py").write_text("import sqlalchemy.dialects.mssql\n")
    for name in (
        "sqlalchemy/__init__.py",
        "sqlalchemy/dialects/__init__.py",
        "sqlalchemy/dialects/mssql/__init__.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    prune_tree(tmp_path)

    # WHEN / THEN the closure names it
    assert pruned_but_imported(import_closure(tmp_path, ["app"], by_name=())) == {"sqlalchemy.dialects.mssql"}


def test_the_local_servers_code_lives_outside_what_chalice_packages() -> None:
    # GIVEN what `chalice package` ships: app.py, chalicelib/ and vendor/ (symlinks followed)
    shipped = []
    for root in ("chalicelib", "vendor"):
        for folder, directories, files in os.walk(PROJECT_ROOT / root, followlinks=True):
            shipped += [
                Path(folder, name).relative_to(PROJECT_ROOT).as_posix() for name in directories + files
            ]

    # THEN no local_server package nor chalicelib.http.local_* module is among it, and the walk that
    # builds the artifact never looks for local_server (app.py imports it under chalice local only)
    assert (PROJECT_ROOT / "local_server" / "__init__.py").is_file()
    assert [path for path in shipped if "local_server" in path.split("/")] == []
    assert [path for path in shipped if path.startswith("chalicelib/http/local_")] == []
    assert "local_server" in NOT_RUN_IN_LAMBDA
