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


def error_code_and_field(response: Any) -> tuple[str, str | None]:
    """The error's code and the field it names, from either face: the JSON API's error body, or a
    FHIR route's OperationOutcome (the code in its issue's details, the field in its expression)."""
    body = json.loads(response.body)
    if body.get("resourceType") != "OperationOutcome":
        return body["code"], body.get("field")
    issue = body["issue"][0]
    return issue["details"]["coding"][0]["code"], (issue.get("expression") or [None])[0]


def error_message(response: Any) -> str:
    body = json.loads(response.body)
    if body.get("resourceType") == "OperationOutcome":
        return str(body["issue"][0]["diagnostics"])
    return str(body["message"])


def documented_error_codes(operation: dict[str, Any], status: int) -> list[str]:
    """The codes an operation documents for ``status``, on either face."""
    content = operation["responses"][str(status)]["content"]
    if "application/fhir+json" in content:
        schema = content["application/fhir+json"]["schema"]["allOf"][1]
        issue = schema["properties"]["issue"]["items"]["properties"]
        return list(issue["details"]["properties"]["coding"]["items"]["properties"]["code"]["enum"])
    return list(content["application/json"]["schema"]["allOf"][1]["properties"]["code"]["enum"])


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


def answer_schema(
    document: dict[str, Any], path: str, method: str, status: int, media_type: str = "application/json"
) -> Draft202012Validator:
    escaped = path.replace("~", "~0").replace("/", "~1")
    assert str(status) in document["paths"][path][method]["responses"], (path, method, status)
    escaped_type = media_type.replace("/", "~1")
    return schema_validator(
        document, f"/paths/{escaped}/{method}/responses/{status}/content/{escaped_type}/schema"
    )


def media_type_of(response: Any) -> str:
    return str(response.headers.get("Content-Type", "application/json")).split(";", 1)[0].strip()


def assert_documented(document: dict[str, Any], path: str, method: str, response: Any) -> None:
    schema = answer_schema(document, path, method, response.status_code, media_type_of(response))
    errors = list(schema.iter_errors(json.loads(response.body)))
    assert not errors, (path, method, response.status_code, [e.message for e in errors])
