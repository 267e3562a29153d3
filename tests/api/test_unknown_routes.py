"""A method and path that match no route: 404 in our error shape, as the packaged API Gateway answers."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.http.gateway_responses import ROUTE_NOT_FOUND_BODY
from tests.helpers.databases import sqlite_only
from tests.helpers.tokens import AUTH


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["anonymous", "with-token"])
@pytest.mark.parametrize("path", ["/", "/patient", "/patients/1/notes"])
@sqlite_only
def test_unknown_paths_are_404_json(client: Any, path: str, headers: dict[str, str]) -> None:
    response = client.http.get(path, headers=headers)

    assert response.status_code == 404
    assert response.json_body == {**ROUTE_NOT_FOUND_BODY, "request_id": response.json_body["request_id"]}
    assert response.headers["Content-Type"] == "application/json"
