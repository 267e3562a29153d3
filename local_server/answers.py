"""The body of an answer the local server gives by itself, the app never having seen the request."""

from __future__ import annotations

import uuid
from typing import Any


def local_error_body(code: str, message: str) -> dict[str, Any]:
    """Our error shape, under an id of the local server's own (no gateway named the request)."""
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}
