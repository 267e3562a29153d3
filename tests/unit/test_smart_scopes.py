"""SMART on FHIR scopes in a JWT's `scope` claim, mapped onto ours: never more than they ask."""

from __future__ import annotations

import pytest

from chalicelib.scopes import PATIENTS_READ, PATIENTS_WRITE, SMART_SCOPES, jwt_scopes

READ, WRITE = frozenset({PATIENTS_READ}), frozenset({PATIENTS_WRITE})
BOTH, NONE = READ | WRITE, frozenset[str]()


@pytest.mark.parametrize(
    ("claim", "granted"),
    [
        # v2: read and search together are our read; create, update and delete together our write.
        ("system/Patient.rs", READ),
        ("system/Patient.cud", WRITE),
        ("system/Patient.cruds", BOTH),
        ("user/Patient.rs", READ),
        ("user/Patient.cruds", BOTH),
        ("system/*.rs", READ),
        ("user/*.cruds", BOTH),
        # v1: read is rs, write is cud, * is cruds.
        ("system/Patient.read", READ),
        ("user/Patient.write", WRITE),
        ("system/Patient.*", BOTH),
        ("user/*.*", BOTH),
        # Permissions combine across the scopes of one claim, and with our own names.
        ("system/Patient.r system/Patient.s", READ),
        ("system/Patient.c user/Patient.ud", WRITE),
        ("patients:read system/Patient.cud", BOTH),
        ("openid fhirUser launch/patient offline_access system/Patient.rs", READ),
    ],
)
def test_smart_scopes_grant_our_scope_when_they_hold_all_its_permissions(
    claim: str, granted: frozenset[str]
) -> None:
    assert jwt_scopes(claim) == granted


@pytest.mark.parametrize(
    "claim",
    [
        # Part of a scope's permissions: ours would allow more than asked.
        "system/Patient.r",
        "system/Patient.s",
        "system/Patient.c",
        "system/Patient.cu",
        "system/Patient.rud",
        # One patient's compartment: this API cannot hold a token to one patient.
        "patient/Patient.rs",
        "patient/Patient.read",
        "patient/*.cruds",
        # Granular v2 scopes narrow with a query we cannot enforce.
        "system/Patient.rs?identifier=http://example.org|42",
        # Another resource type; audit:read stays our own name.
        "system/Observation.rs",
        "system/AuditEvent.rs",
        # Malformed: letters out of order, repeated, unknown, empty; wrong case; no context.
        "system/Patient.sr",
        "system/Patient.rrs",
        "system/Patient.x",
        "system/Patient.",
        "System/Patient.rs",
        "system/patient.rs",
        "Patient.rs",
        "system/Patient.READ",
        "",
    ],
)
def test_scopes_that_ask_for_less_or_other_than_ours_grant_nothing(claim: str) -> None:
    assert jwt_scopes(claim) == NONE


def test_a_scope_claim_that_is_not_a_string_grants_nothing() -> None:
    assert jwt_scopes(["system/Patient.rs"]) == NONE
    assert jwt_scopes(None) == NONE


def test_the_advertised_smart_scopes_grant_what_they_say() -> None:
    # The CapabilityStatement lists SMART_SCOPES: each must grant exactly its entry, alone.
    assert {"system/Patient.rs", "system/Patient.cud", "user/Patient.read", "user/Patient.write"} <= set(
        SMART_SCOPES
    )
    for scope, granted in SMART_SCOPES.items():
        assert jwt_scopes(scope) == granted, scope
        assert jwt_scopes(scope.replace("/Patient.", "/*.")) == granted, scope
