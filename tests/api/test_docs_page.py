"""The docs page and its assets, served by the API without a token."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.http.docs_page import ASSETS
from tests.helpers.databases import sqlite_only


@sqlite_only
def test_docs_page_is_public_html_that_loads_only_our_assets(client: Any) -> None:
    response = client.http.get("/docs")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    assert 'url: "openapi.json"' in page
    for asset in ASSETS:
        assert f'"docs/assets/{asset}"' in page
    assert "http://" not in page and "https://" not in page  # no CDN: works offline


@pytest.mark.parametrize(
    "page", ["http://127.0.0.1:8000/docs/", "https://x.execute-api.amazonaws.com/api/docs/"]
)
@sqlite_only
def test_docs_with_a_trailing_slash_redirects_to_the_page_its_links_are_relative_to(
    client: Any, page: str
) -> None:
    # GIVEN /docs/, where the page's relative links would resolve under /docs/docs/
    response = client.http.get("/docs/")

    # THEN the answer sends the browser to /docs, under API Gateway's stage prefix too
    assert response.status_code == 301
    assert response.headers["Cache-Control"] == "no-store"
    target = urljoin(page, response.headers["Location"])
    assert urlsplit(target).path == urlsplit(page).path.rstrip("/")
    assert urlsplit(urljoin(target, "docs/assets/swagger-ui.css")).path.endswith(
        "/docs/assets/swagger-ui.css"
    )


@sqlite_only
def test_assets_are_served_as_text_with_their_content_type(client: Any) -> None:
    for asset, content_type in ASSETS.items():
        response = client.http.get(f"/docs/assets/{asset}")

        assert response.status_code == 200, asset
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"].startswith("public")
        assert len(response.body) > 10_000


@sqlite_only
def test_bundle_is_swagger_ui_5_which_reads_openapi_3_1(client: Any) -> None:
    bundle = client.http.get("/docs/assets/swagger-ui-bundle.js").body.decode()

    assert "SwaggerUIBundle" in bundle
    assert "OpenAPI 3.1" in bundle or "3.1.0" in bundle


@sqlite_only
def test_unknown_asset_is_a_404_error_body(client: Any) -> None:
    for name in ("nope.js", "..%2F..%2Fchalicelib%2Fconfig.py", "swagger-ui.js"):
        response = client.http.get(f"/docs/assets/{name}")

        assert response.status_code == 404
        assert response.json_body["code"] == "not_found"
        assert response.headers["Cache-Control"] == "no-store"


def test_importing_the_app_loads_neither_the_assets_nor_the_document_builder_dependencies() -> None:
    modules = ("swagger_ui", "jinja2", "yaml", "openapi_spec_validator")
    probe = f"import sys, app; print(sorted(m for m in {modules!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"
