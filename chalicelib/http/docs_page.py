"""The browser view of the OpenAPI document: Swagger UI, served by the API itself.

The assets come from the ``swagger-ui-py`` package (Swagger UI 5, which reads
OpenAPI 3.1), installed through requirements.txt, so they travel in the Lambda
artifact and the page works offline: no CDN. Only text assets are served
(no favicon), so nothing needs Chalice's binary handling. The package is
located, and files read, on the first request for them.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from chalicelib.errors import DocumentationAssetNotFound

ASSET_PACKAGE = "swagger_ui"  # distribution swagger-ui-py
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
# The files change only with the package version, which changes only with a deploy.
ASSET_CACHE_CONTROL = "public, max-age=86400"

# Relative URLs, so the page works under API Gateway's stage prefix (/api/docs) too. From /docs/
# they would resolve under /docs/docs/: that address redirects here (relative, for the same reason).
DOCS_PAGE_FROM_ITS_DIRECTORY = "../docs"
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Telehealth patient API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  </script>
</body>
</html>
"""


def read_asset(name: str) -> tuple[str, str]:
    """Return the asset's text and content type. Raises DocumentationAssetNotFound."""
    content_type = ASSETS.get(name)
    if content_type is None:
        raise DocumentationAssetNotFound()
    return _asset_text(name), content_type


@lru_cache(maxsize=len(ASSETS))
def _asset_text(name: str) -> str:
    return (_asset_directory() / name).read_text(encoding="utf-8")


def _asset_directory() -> Path:
    # find_spec locates the package without running its __init__ (which imports Jinja2 and YAML).
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {ASSET_PACKAGE} package (swagger-ui-py) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"
