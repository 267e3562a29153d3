"""The answers handlers build: JSON, empty, redirect and text, each with the headers every answer carries."""

from __future__ import annotations

from typing import Any

from chalice.app import Response

# Every response can carry patient data or an error about it: never cache,
# unless a handler says otherwise (the public documentation assets do).
BASE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
JSON_MEDIA_TYPE = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # Content-Type said explicitly: API Gateway and chalice local assume JSON when it is missing,
    # Lambda's other callers (and chalice.test.Client) do not.
    return Response(
        body=body, status_code=status, headers={"Content-Type": JSON_MEDIA_TYPE, **(headers or {})}
    )


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    """An answer without a body, such as 304 Not Modified."""
    return json_response("", status, headers)


def redirect_response(location: str) -> Response:
    """A 301 to ``location``; relative, so API Gateway's stage prefix (/api) is kept."""
    return json_response("", 301, {"Location": location})


def text_response(body: str, content_type: str, *, cache_control: str | None = None) -> Response:
    """A 200 with a text body (HTML, JavaScript, CSS, pre-serialized JSON): never base64 in Lambda."""
    headers = {"Content-Type": content_type}
    if cache_control:
        headers["Cache-Control"] = cache_control
    return json_response(body, 200, headers)


def with_base_headers(response: Response) -> Response:
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
