"""Signed JWTs beside static tokens: signature, issuer, audience and expiry checked; scopes from `scope`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import chalice.test
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config.settings import PROJECT_ROOT
from tests.helpers.environment import configure_environment
from tests.helpers.patients import JOHN, without_phone

ISSUER, AUDIENCE = "https://idp.clinic.example", "telehealth-api"
HS256_SECRET = "a-shared-secret-of-at-least-32-bytes!"
STATIC_TOKEN = "static-token"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, signing_key: rsa.RSAPrivateKey
) -> Iterator[chalice.test.Client]:
    configure_environment(
        monkeypatch,
        DATABASE_URL=sqlite_url,
        API_TOKENS=f"static:{STATIC_TOKEN}",
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
        JWT_HS256_SECRET=HS256_SECRET,
        JWT_RS256_PUBLIC_KEY=public_pem(signing_key),
    )
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "clinic-42",
        "iat": now,
        "exp": now + 300,
        "scope": "patients:read patients:write",
    }
    return {key: value for key, value in {**base, **overrides}.items() if value is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), HS256_SECRET, algorithm="HS256")


def rs256(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256")


def hmac_signed(payload: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT built by hand: PyJWT itself refuses a PEM key as an HMAC secret."""

    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = segment(b'{"alg":"HS256","typ":"JWT"}') + "." + segment(json.dumps(payload).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


def get_patients(client: Any, token: str) -> Any:
    return client.http.get("/patients", headers={"Authorization": f"Bearer {token}"})


def test_hs256_and_rs256_tokens_are_accepted(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    assert get_patients(client, hs256()).status_code == 200
    assert get_patients(client, rs256(signing_key)).status_code == 200
    assert get_patients(client, STATIC_TOKEN).status_code == 200  # static tokens keep working


def test_the_principal_is_the_subject_under_its_issuer_and_the_scope_claim_its_scopes(client: Any) -> None:
    from chalicelib.access.identity import identify
    from chalicelib.bootstrap import auth_settings

    identity = identify(f"Bearer {hs256()}", auth_settings())

    assert identity is not None
    assert identity.principal == f"jwt:{ISSUER}:clinic-42"
    assert identity.scopes == {"patients:read", "patients:write"}


def test_a_subject_named_like_a_static_principal_is_not_that_principal(client: Any) -> None:
    from chalicelib.access.identity import identify
    from chalicelib.bootstrap import auth_settings

    # GIVEN a JWT whose sub is the static principal "static" (and the dev token's "development")
    for subject in ("static", "development"):
        identity = identify(f"Bearer {hs256(sub=subject)}", auth_settings())

        # THEN its audit identity, rate-limit bucket and idempotency namespace are its own
        assert identity is not None and identity.principal == f"jwt:{ISSUER}:{subject}"


@pytest.mark.parametrize(
    "subject",
    ["x" * 129, "clinic\n42", "clinic 42", "", "clinic\u202e42", "<script>", 42],
    ids=["too-long", "newline", "space", "empty", "bidi", "markup", "not-a-string"],
)
def test_a_subject_outside_the_safe_alphabet_is_a_401(
    client: Any, signing_key: rsa.RSAPrivateKey, subject: Any
) -> None:
    # A refused token never reaches a handler: its sub is in no log line, audit row or rate-limit key.
    for token in (hs256(sub=subject), rs256(signing_key, sub=subject)):
        assert get_patients(client, token).status_code == 401


def test_the_scope_claim_decides_what_the_token_may_do(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    reader = rs256(signing_key, scope="patients:read")
    no_scope = hs256(scope=None)
    body = json.dumps(without_phone(JOHN))
    json_header = {"Content-Type": "application/json"}

    assert get_patients(client, reader).status_code == 200
    refused = client.http.post(
        "/patients", headers={"Authorization": f"Bearer {reader}", **json_header}, body=body
    )
    assert refused.status_code == 403 and refused.json_body["code"] == "insufficient_scope"
    assert get_patients(client, no_scope).status_code == 403
    assert get_patients(client, hs256(scope="patients:read admin root")).status_code == 200


def test_smart_on_fhir_scopes_grant_ours_and_no_more(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    # GIVEN JWTs whose scope claims hold SMART on FHIR scopes (docs/smart-scopes.md) instead of ours
    reader = hs256(scope="openid fhirUser system/Patient.rs")
    writer = rs256(signing_key, scope="user/Patient.write")
    partial = hs256(scope="system/Patient.r system/Patient.cu patient/Patient.cruds")
    json_header = {"Content-Type": "application/json"}

    # WHEN the writer creates a patient
    created = client.http.post(
        "/patients",
        headers={"Authorization": f"Bearer {writer}", **json_header},
        body=json.dumps(without_phone(JOHN)),
    )

    # THEN it may write and not read: its receipt shows no patient data, as for patients:write alone
    assert created.status_code == 201
    assert "name" not in created.json_body["patient"]
    patient = f"/patients/{created.json_body['patient']['id']}"
    assert client.http.get(patient, headers={"Authorization": f"Bearer {writer}"}).status_code == 403
    # AND the reader reads and cannot write
    assert (
        client.http.get(patient, headers={"Authorization": f"Bearer {reader}"}).json_body["name"]
        == JOHN["name"]
    )
    refused = client.http.delete(patient, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403 and refused.json_body["code"] == "insufficient_scope"
    # AND part of a scope's permissions, or one patient's compartment, grants nothing: valid token, 403
    assert get_patients(client, partial).status_code == 403


def test_smart_scopes_open_the_fhir_face_as_they_open_ours(
    client: Any, signing_key: rsa.RSAPrivateKey
) -> None:
    from fhir.resources.R4B.operationoutcome import OperationOutcome
    from fhir.resources.R4B.patient import Patient

    # GIVEN a backend service's JWTs: one that may create, update and delete, one that may read and search
    writer = {"Authorization": f"Bearer {rs256(signing_key, scope='system/Patient.cud')}"}
    reader = {"Authorization": f"Bearer {hs256(scope='system/Patient.rs')}"}
    fhir_json = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    patient = {"resourceType": "Patient", "name": [{"text": JOHN["name"]}]}
    patient["telecom"] = [{"system": "email", "value": JOHN["email"]}]

    # WHEN the writer creates a patient through FHIR
    created = client.http.post("/fhir/Patient", headers={**writer, **fhir_json}, body=json.dumps(patient))

    # THEN it is created, and the writer is shown no patient data (minimum necessary)
    assert created.status_code == 201, created.body
    assert (
        "John" not in created.body.decode() if isinstance(created.body, bytes) else "John" not in created.body
    )
    location = created.headers["Location"]
    patient_path = location[location.index("/fhir/") :].split("/_history")[0]
    # AND reading is refused to it as a FHIR client expects: 403, OperationOutcome "forbidden"
    refused = client.http.get(patient_path, headers={**writer, **fhir_json})
    assert refused.status_code == 403
    assert OperationOutcome.model_validate(json.loads(refused.body)).issue[0].code == "forbidden"
    # AND the reader reads it back
    read = client.http.get(patient_path, headers={**reader, **fhir_json})
    assert read.status_code == 200
    assert Patient.model_validate(json.loads(read.body)).name[0].text == JOHN["name"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 3600},
        {"iss": "https://evil.example"},
        {"aud": "another-api"},
        {"exp": None},
        {"sub": None},
        {"aud": None},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["expired", "issuer", "audience", "no-exp", "no-sub", "no-aud", "not-yet-valid"],
)
def test_claims_that_fail_the_checks_are_a_401(
    client: Any, signing_key: rsa.RSAPrivateKey, overrides: dict[str, Any]
) -> None:
    for token in (hs256(**overrides), rs256(signing_key, **overrides)):
        response = get_patients(client, token)

        assert response.status_code == 401
        assert response.json_body["code"] == "unauthorized"


def test_forged_signatures_are_a_401(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    header, payload, signature = hs256().split(".")
    other_payload = hs256(sub="someone-else").split(".")[1]
    forged = [
        jwt.encode(claims(), "another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
        rs256(rsa_key()),
        f"{header}.{other_payload}.{signature}",  # payload swapped under a valid signature
        jwt.encode(claims(), None, algorithm="none"),
        # Algorithm confusion: HS256 keyed with the RSA public key, which anyone may know.
        hmac_signed(claims(), public_pem(signing_key).encode()),
        jwt.encode(claims(), HS256_SECRET * 2, algorithm="HS512"),  # an algorithm not configured
        "not.a.jwt",
    ]
    for token in forged:
        assert get_patients(client, token).status_code == 401, token
    # The hand-built token is refused for its key alone: signed with the secret, it passes.
    assert get_patients(client, hmac_signed(claims(), HS256_SECRET.encode())).status_code == 200


def test_without_jwt_settings_a_jwt_is_a_401(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    from chalicelib.bootstrap import reset_for_tests

    monkeypatch.delenv("JWT_HS256_SECRET")
    monkeypatch.delenv("JWT_RS256_PUBLIC_KEY")
    monkeypatch.delenv("JWT_ISSUER")
    monkeypatch.delenv("JWT_AUDIENCE")
    reset_for_tests()

    assert get_patients(client, hs256()).status_code == 401


def test_pyjwt_is_imported_only_when_a_jwt_is_checked(sqlite_url: str) -> None:
    probe = (
        "import sys, app\n"
        "from chalicelib.access.identity import identify\n"
        "from chalicelib.bootstrap import auth_settings\n"
        "assert identify('Bearer static-token', auth_settings()) is not None\n"
        "print(sorted(m for m in ('jwt', 'cryptography') if m in sys.modules))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_STAGE": "dev",
        "DATABASE_URL": sqlite_url,
        "API_TOKENS": f"static:{STATIC_TOKEN}",
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "JWT_HS256_SECRET": HS256_SECRET,
    }
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"
