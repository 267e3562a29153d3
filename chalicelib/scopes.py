"""What a token may do. Each route declares the one scope it needs (app.py); the HTTP wrapper checks it.

A JWT's ``scope`` claim may also hold SMART on FHIR scopes (App Launch 2.x ``system/Patient.rs``, 1.x
``system/Patient.read``); ``jwt_scopes`` maps them onto ours, granting never more than they ask:

* ``patients:read`` needs both ``r`` (read by id) and ``s`` (search): our one scope allows both,
  so a token asking for only one of them gets neither;
* ``patients:write`` needs ``c``, ``u`` and ``d`` together, for the same reason;
* only the ``system/`` and ``user/`` contexts map: a ``patient/`` scope asks for one patient's
  compartment, which this API cannot restrict a token to, so it grants nothing;
* ``Patient`` or the ``*`` resource; ``audit:read`` stays our own name (no SMART scope grants it);
* a v2 scope with a query (``system/Patient.rs?identifier=…``) narrows what it allows in a way we
  cannot enforce: it grants nothing. Malformed or unknown scopes grant nothing either.

Permissions combine across the scopes of one claim (``system/Patient.r system/Patient.s`` reads).
"""

from __future__ import annotations

import re

PATIENTS_READ = "patients:read"
PATIENTS_WRITE = "patients:write"
AUDIT_READ = "audit:read"

ALL_SCOPES = frozenset({PATIENTS_READ, PATIENTS_WRITE, AUDIT_READ})
# What a static token configured without scopes may do: everything it could before scopes existed.
DEFAULT_SCOPES = frozenset({PATIENTS_READ, PATIENTS_WRITE})

# SMART App Launch: <context>/<resource type>.<permissions>; v2 permissions are a subset of
# "cruds" in that order, v1 ones are read, write or *.
SMART_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<resource>[A-Za-z]+|\*)\.(?P<permissions>read|write|\*|c?r?u?d?s?)"
)
SMART_CONTEXTS = frozenset({"system", "user"})  # the contexts that map; patient/ grants nothing
SMART_RESOURCES = frozenset({"Patient", "*"})
# SMART v1 permissions in v2's letters (App Launch 2.x, "Scopes for requesting FHIR resources").
SMART_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# Which of our scopes needs which SMART permissions, all of them.
SMART_PERMISSIONS_FOR_SCOPE = {PATIENTS_READ: frozenset("rs"), PATIENTS_WRITE: frozenset("cud")}

# The SMART scopes a client may ask for and what each grants, as the CapabilityStatement lists
# them: v2 first, then v1's equivalents. ``*`` in place of ``Patient`` grants the same.
SMART_SCOPES: dict[str, frozenset[str]] = {
    f"{context}/Patient.{permissions}": granted
    for permissions, granted in (
        ("rs", frozenset({PATIENTS_READ})),
        ("cud", frozenset({PATIENTS_WRITE})),
        ("cruds", frozenset({PATIENTS_READ, PATIENTS_WRITE})),
        ("read", frozenset({PATIENTS_READ})),
        ("write", frozenset({PATIENTS_WRITE})),
        ("*", frozenset({PATIENTS_READ, PATIENTS_WRITE})),
    )
    for context in ("system", "user")
}


def scope_string(scopes: frozenset[str]) -> str:
    """Space-separated and sorted, as in OAuth's ``scope``; authorizer contexts hold only strings."""
    return " ".join(sorted(scopes))


def parse_scope_string(value: object) -> frozenset[str]:
    """The known scopes in a space-separated string; anything else names none."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(value.split()) & ALL_SCOPES


def jwt_scopes(value: object) -> frozenset[str]:
    """Our scopes granted by a JWT's space-separated ``scope`` claim: our own names, and the SMART
    on FHIR scopes mapped as the module docstring says. Anything else grants nothing."""
    if not isinstance(value, str):
        return frozenset()
    return parse_scope_string(value) | smart_scopes_granted(value.split())


def smart_scopes_granted(requested: list[str]) -> frozenset[str]:
    """Our scopes whose SMART permissions ``requested`` holds in full (in the mapped contexts)."""
    permissions = set().union(*(smart_permissions(scope) for scope in requested))
    return frozenset(scope for scope, needed in SMART_PERMISSIONS_FOR_SCOPE.items() if needed <= permissions)


def smart_permissions(scope: str) -> frozenset[str]:
    """The v2 permission letters one SMART scope allows on any patient; none if it does not map."""
    match = SMART_SCOPE.fullmatch(scope)
    if match is None or match["context"] not in SMART_CONTEXTS or match["resource"] not in SMART_RESOURCES:
        return frozenset()
    return frozenset(SMART_V1_PERMISSIONS.get(match["permissions"], match["permissions"]))
