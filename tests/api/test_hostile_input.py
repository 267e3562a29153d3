"""Hostile bodies: each is a 4xx with our error body, nothing reaches the database, nothing echoes it back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.api import assert_documented, error_code_and_field, get_document
from tests.helpers.tokens import AUTH, JSON_AUTH

VALID = b'"name": "A", "email": "a@example.com"'


def post(client: Any, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.http.post("/patients", headers=headers or JSON_AUTH, body=raw)


def stored_patients(client: Any) -> int:
    return int(client.http.get("/patients", headers=AUTH).json_body["total"])


def assert_refused(client: Any, response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    body = response.json_body
    assert body["code"] == code
    # Strict UTF-8 JSON: no lone surrogate or control character travels back to the client.
    text = response.body.decode("utf-8")
    assert "\\ud8" not in text.lower() and "\\u0000" not in text
    assert_documented(get_document(client), "/patients", "post", response)
    assert stored_patients(client) == 0
    return dict(body)


@pytest.mark.parametrize(
    "raw, field",
    [
        # json.loads accepts lone surrogates; neither database can store them.
        (b'{"name": "A\\ud800", "email": "a@example.com"}', "name"),
        (b'{"name": "A", "email": "a\\udfff@example.com"}', "email"),
        (b'{"name": "A", "email": "a@example.com", "phone": "555\\ud800"}', "phone"),
        # NUL, which PostgreSQL refuses in text, and other C0/C1 controls.
        (b'{"name": "A\\u0000", "email": "a@example.com"}', "name"),
        (b'{"name": "A", "email": "a@exa\\u0000mple.com"}', "email"),
        (b'{"name": "A\\u0085B", "email": "a@example.com"}', "name"),
        (b'{"name": "A\\nB", "email": "a@example.com"}', "name"),
        # Bidi overrides and isolates, which make a name display as another (Trojan Source).
        (b'{"name": "evil\\u202egnp.exe", "email": "a@example.com"}', "name"),
        (b'{"name": "A\\u2066B", "email": "a@example.com"}', "name"),
        # Overlong fields, also once trimmed, and numbers too large for a float.
        (b'{"name": "' + b"A" * 201 + b'", "email": "a@example.com"}', "name"),
        (b'{"name": "A", "email": "a@example.com", "phone": "' + b"1" * 33 + b'"}', "phone"),
        (b'{"name": 1e999999, "email": "a@example.com"}', "name"),
    ],
)
def test_hostile_strings_are_refused_naming_the_field(client: Any, raw: bytes, field: str) -> None:
    body = assert_refused(client, post(client, raw), 400, "validation_failed")

    assert body["field"] == field


@pytest.mark.parametrize(
    "raw",
    [
        b"{" + VALID + b', "' + b"x" * 5000 + b'": 1}',
        b'{"na\\u0000me": "A", "email": "a@example.com"}',
        b'{"\\ud800": 1}',
        b'{"name\\u202e": "A", "email": "a@example.com"}',
        b'{"<script>alert(1)</script>": 1}',
    ],
)
def test_unknown_field_names_are_repeated_only_when_plain(client: Any, raw: bytes) -> None:
    body = assert_refused(client, post(client, raw), 400, "validation_failed")

    assert "field" not in body
    assert body["message"] == "Unknown field (its name is not a plain field name)"


def test_a_plain_unknown_field_is_named(client: Any) -> None:
    body = assert_refused(
        client, post(client, b"{" + VALID + b', "role": "admin"}'), 400, "validation_failed"
    )

    assert isinstance(body.pop("request_id"), str)
    assert body == {"code": "validation_failed", "message": "Unknown field: role", "field": "role"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": 1' + b"1" * 5000 + b"}",  # past Python's 4,300-digit limit for int()
        b'{"name": ' + b"[" * 20000 + b"]" * 20000 + b"}",  # deeper than the parser recurses
        b'{"name": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"name": "\xc0\xaf", "email": "a@example.com"}',  # overlong UTF-8 encoding of "/"
        b'{"name": "\xed\xa0\x80", "email": "a@example.com"}',  # a surrogate encoded as UTF-8
        b"\xef\xbb\xbf{" + VALID + b"}",  # a byte-order mark
        b'{"name": "A", "email": "a@example.com"',
        b"{" + VALID + b"} {}",
        b'{"name": Infinity, "email": "a@example.com"}',
    ],
)
def test_bodies_that_are_not_one_json_object_are_malformed(client: Any, raw: bytes) -> None:
    assert_refused(client, post(client, raw), 400, "malformed_request")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_other_media_types_are_415(client: Any, content_type: str) -> None:
    response = post(client, b"{" + VALID + b"}", {**AUTH, "Content-Type": content_type})

    assert_refused(client, response, 415, "unsupported_media_type")


def test_the_body_limit_is_configurable_and_documented(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.bootstrap import reset_for_tests

    monkeypatch.setenv("MAX_BODY_BYTES", "200")
    reset_for_tests()
    at_limit = b'{"name": "A", "email": "a@example.com", "phone": null}'.ljust(200)

    try:
        accepted = post(client, at_limit)
        refused = post(client, b'{"name": "B", "email": "b@example.com"}'.ljust(201))
        document = json.loads(client.http.get("/openapi.json").body)
    finally:
        reset_for_tests()  # the document was built with this test's limit

    assert accepted.status_code == 201
    assert refused.status_code == 413
    assert {k: v for k, v in refused.json_body.items() if k != "request_id"} == {
        "code": "payload_too_large",
        "message": "Request body must be at most 200 bytes",
    }
    assert document["paths"]["/patients"]["post"]["requestBody"]["description"] == (
        "A JSON object of at most 200 bytes."
    )


@pytest.mark.parametrize(
    "raw, key",
    [
        # The first email is never validated if the last one wins.
        (b'{"name": "S", "email": "not-an-email", "email": "ok@x.example"}', "email"),
        (b'{"name": "S", "name": "T", "email": "ok@x.example"}', "name"),
        (b'{"name": "S", "email": "ok@x.example", "phone": null, "phone": "123-456-7890"}', "phone"),
        (b'{"name": "S", "email": "ok@x.example", "x": {"a": 1, "a": 2}}', "a"),
    ],
)
def test_a_key_given_twice_is_refused_naming_it(client: Any, raw: bytes, key: str) -> None:
    body = assert_refused(client, post(client, raw), 400, "duplicate_key")

    assert body["field"] == key


def test_a_duplicate_key_is_refused_on_every_route_that_takes_a_body(client: Any) -> None:
    # GIVEN every operation the document says takes a JSON body, and a patient to change
    document = get_document(client)
    created = client.http.post("/patients", headers=JSON_AUTH, body=b"{" + VALID + b"}").json_body
    with_body = [
        (path.replace("{patient_id}", str(created["patient"]["id"])), method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(with_body) >= 2

    for url, method, path in with_body:
        # WHEN one of them gets an object that names a key twice
        response = getattr(client.http, method)(url, headers=JSON_AUTH, body=b'{"name": "S", "name": "T"}')

        # THEN it is a documented 400 naming the key, whatever else the body would have needed
        assert response.status_code == 400, (method, path)
        # (on the FHIR routes, an OperationOutcome carrying the same code and field)
        assert error_code_and_field(response) == ("duplicate_key", "name"), (method, path)
        assert_documented(document, path, method, response)


def test_a_key_that_is_not_a_plain_name_is_not_repeated(client: Any) -> None:
    body = assert_refused(client, post(client, b'{"<script>": 1, "<script>": 2}'), 400, "duplicate_key")

    assert "field" not in body and "<script>" not in json.dumps(body)
