"""Each endpoint is declared once, on its handler: registration and the document follow that declaration."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import chalice.test
import pytest
from chalice import Chalice
from chalice.app import Request, Response

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.http.endpoints import DOCUMENTATION_TAG, Reply, endpoint
from chalicelib.http.middleware import bind_current_request
from chalicelib.http.responses import json_response
from chalicelib.http.routes import register_endpoint
from chalicelib.scopes import PATIENTS_READ
from functions.get_docs_page import get_docs_page
from functions.get_openapi_document import get_openapi_document


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (relative imports stay relative)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_handler_imports_app() -> None:
    # app.py imports every handler: a handler importing it back would make a cycle.
    handlers = sorted((PROJECT_ROOT / "functions").glob("*.py"))

    importing_app = [path.name for path in handlers if "app" in imported_modules(path)]

    assert handlers and importing_app == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no data: one database is enough
def test_the_document_describes_the_app_that_serves_it(client: Any) -> None:
    # GIVEN a second app serving only the document and the docs page
    other = Chalice(app_name="documented-elsewhere")
    other.register_middleware(bind_current_request, "http")
    for handler in (get_openapi_document, get_docs_page):
        register_endpoint(other, handler, authorizer=None)

    # WHEN each app is asked for its document
    with chalice.test.Client(other) as other_client:
        other_document = json.loads(other_client.http.get("/openapi.json").body)
    document = json.loads(client.http.get("/openapi.json").body)

    # THEN each lists its own routes, and the other app's document names only its two
    assert set(other_document["paths"]) == {"/openapi.json", "/docs"}
    assert "/patients" in document["paths"] and "/patients" not in other_document["paths"]


def test_a_handler_without_a_declaration_cannot_be_registered() -> None:
    def undeclared(request: Request) -> Response:
        return json_response({})

    with pytest.raises(ValueError, match="undeclared is not declared with @endpoint"):
        register_endpoint(Chalice(app_name="undeclared"), undeclared, authorizer=None)


def test_an_endpoint_that_names_a_scope_needs_an_authorizer() -> None:
    @endpoint("GET", "/private", scope=PATIENTS_READ, summary="Private", tag=DOCUMENTATION_TAG, replies={})
    def private(request: Request) -> Response:
        return json_response({})

    with pytest.raises(ValueError, match="GET /private needs a token"):
        register_endpoint(Chalice(app_name="unguarded"), private, authorizer=None)


def test_a_declaration_names_a_known_method_and_tag() -> None:
    with pytest.raises(ValueError, match="the method is one of"):
        endpoint("PATCH", "/x", summary="x", tag=DOCUMENTATION_TAG, replies={200: Reply("x", None)})
    with pytest.raises(ValueError, match="the tag is one of"):
        endpoint("GET", "/x", summary="x", tag="elsewhere", replies={200: Reply("x", None)})
