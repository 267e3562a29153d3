"""What a token may do. Each route declares the one scope it needs (app.py); the HTTP wrapper checks it."""

from __future__ import annotations

PATIENTS_READ = "patients:read"
PATIENTS_WRITE = "patients:write"
AUDIT_READ = "audit:read"

ALL_SCOPES = frozenset({PATIENTS_READ, PATIENTS_WRITE, AUDIT_READ})
# What a static token configured without scopes may do: everything it could before scopes existed.
DEFAULT_SCOPES = frozenset({PATIENTS_READ, PATIENTS_WRITE})


def scope_string(scopes: frozenset[str]) -> str:
    """Space-separated and sorted, as in OAuth's ``scope``; authorizer contexts hold only strings."""
    return " ".join(sorted(scopes))


def parse_scope_string(value: object) -> frozenset[str]:
    """The known scopes in a space-separated string; anything else names none."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(value.split()) & ALL_SCOPES
