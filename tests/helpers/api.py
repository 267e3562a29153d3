"""Requests and answers through chalice.test.Client, in process, and the OpenAPI document they follow."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.helpers.tokens import JSON_AUTH


def post(client: Any, body: Any, headers: dict[str, str] = JSON_AUTH) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.post("/patients", headers=headers, body=raw)


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.body
    body = response.json_body
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field
    assert "Traceback" not in response.body.decode()


def app_routes() -> dict[tuple[str, str], bool]:
    """Every route of app.py as (path, METHOD), mapped to whether the bearer authorizer guards it."""
    from app import app

    return {
        (path, method): entry.authorizer is not None
        for path, methods in app.routes.items()
        for method, entry in methods.items()
    }


# --- The OpenAPI document ------------------------------------------------------------------------

DOCUMENT_URI = "urn:telehealth:openapi"


def get_document(client: Any) -> dict[str, Any]:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def schema_validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry)


def answer_schema(document: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator:
    escaped = path.replace("~", "~0").replace("/", "~1")
    assert str(status) in document["paths"][path][method]["responses"], (path, method, status)
    return schema_validator(
        document, f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    )


def assert_documented(document: dict[str, Any], path: str, method: str, response: Any) -> None:
    errors = list(answer_schema(document, path, method, response.status_code).iter_errors(response.json_body))
    assert not errors, (path, method, response.status_code, [e.message for e in errors])
