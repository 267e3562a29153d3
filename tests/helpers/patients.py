"""The sample patients, defined once; a test that needs a difference derives it from these."""

from __future__ import annotations

from typing import Any

JOHN: dict[str, Any] = {"name": "John Doe", "email": "john.doe@example.com", "phone": "123-456-7890"}
JANE: dict[str, Any] = {"name": "Jane Roe", "email": "jane.roe@example.com", "phone": "+1 415 555 0100"}


def numbered(patient: dict[str, Any], number: int) -> dict[str, Any]:
    """``patient`` with an email of its own, ``first.last+number@...``: one of many distinct patients."""
    local, domain = patient["email"].split("@")
    return {**patient, "email": f"{local}+{number}@{domain}"}
