"""Every patient route through chalice.test.Client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.helpers.api import assert_error, post
from tests.helpers.patients import JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH


def put(client: Any, patient_id: Any, body: Any) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=raw)


def create(client: Any, **overrides: Any) -> dict[str, Any]:
    response = post(client, {**JOHN, **overrides})
    assert response.status_code == 201, response.body
    return response.json_body["patient"]


def test_create_returns_the_seed_shape(client: Any) -> None:
    response = post(client, JOHN)

    assert response.status_code == 201
    body = response.json_body
    assert body["message"] == "Patient created successfully"
    patient = body["patient"]
    assert {k: patient[k] for k in ("name", "email", "phone")} == JOHN
    assert isinstance(patient["id"], int)
    assert patient["created_at"] == patient["updated_at"]
    assert datetime.fromisoformat(patient["created_at"]).utcoffset().total_seconds() == 0
    assert response.headers["Cache-Control"] == "no-store"


def test_get_returns_the_patient(client: Any) -> None:
    created = create(client)

    response = client.http.get(f"/patients/{created['id']}", headers=AUTH)

    assert response.status_code == 200
    assert response.json_body == created


def test_update_is_partial_and_advances_updated_at(client: Any) -> None:
    created = create(client)

    first = put(client, created["id"], {"name": "John Smith", "phone": "987-654-3210"})
    second = put(client, created["id"], {"phone": None})

    assert first.status_code == 200
    assert first.json_body["message"] == "Patient updated successfully"
    updated = first.json_body["patient"]
    assert (updated["name"], updated["email"], updated["phone"]) == (
        "John Smith",
        JOHN["email"],
        "987-654-3210",
    )
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] > created["updated_at"]
    assert second.json_body["patient"]["phone"] is None
    assert second.json_body["patient"]["updated_at"] > updated["updated_at"]


def test_delete_then_gone(client: Any) -> None:
    created = create(client)

    response = client.http.delete(f"/patients/{created['id']}", headers=AUTH)

    assert response.status_code == 200
    assert response.json_body == {"message": "Patient deleted successfully"}
    assert_error(client.http.get(f"/patients/{created['id']}", headers=AUTH), 404, "patient_not_found")
    assert_error(client.http.delete(f"/patients/{created['id']}", headers=AUTH), 404, "patient_not_found")


def test_list_pages_in_id_order(client: Any) -> None:
    ids = [create(client, email=f"p{i}@example.com")["id"] for i in range(5)]

    first = client.http.get("/patients?per_page=2", headers=AUTH).json_body
    last = client.http.get("/patients?page=3&per_page=2", headers=AUTH).json_body
    past_end = client.http.get("/patients?page=9&per_page=2", headers=AUTH).json_body

    assert (first["total"], first["pages"], first["current_page"]) == (5, 3, 1)
    assert [p["id"] for p in first["patients"]] == ids[:2]
    assert [p["id"] for p in last["patients"]] == ids[4:]
    assert past_end["patients"] == [] and past_end["total"] == 5


def test_list_defaults_and_empty(client: Any) -> None:
    body = client.http.get("/patients", headers=AUTH).json_body

    assert body == {
        "total": 0,
        "pages": 0,
        "current_page": 1,
        "per_page": 20,
        "patients": [],
        "next": None,
    }


@pytest.mark.parametrize(
    "query, field",
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=1.5", "per_page"),
        ("page=%C2%B2", "page"),
    ],
)
def test_list_rejects_bad_paging(client: Any, query: str, field: str) -> None:
    assert_error(client.http.get(f"/patients?{query}", headers=AUTH), 400, "validation_failed", field)


@pytest.mark.parametrize(
    "raw_id", ["0", "abc", "-1", "1.5", "99999999999999999999999", "9223372036854775808"]
)
def test_unknown_and_impossible_ids_are_404(client: Any, raw_id: str) -> None:
    for method in ("get", "delete"):
        assert_error(
            getattr(client.http, method)(f"/patients/{raw_id}", headers=AUTH), 404, "patient_not_found"
        )
    assert_error(put(client, raw_id, {"name": "x"}), 404, "patient_not_found")


def test_largest_id_is_404_not_500(client: Any) -> None:
    assert_error(client.http.get("/patients/9223372036854775807", headers=AUTH), 404, "patient_not_found")


def test_duplicate_email_is_409_case_insensitively(client: Any) -> None:
    create(client)
    other = create(client, email="someone@example.com")

    assert_error(post(client, {**JOHN, "email": "JOHN.DOE@EXAMPLE.COM"}), 409, "duplicate_email", "email")
    assert_error(put(client, other["id"], {"email": "John.Doe@example.com"}), 409, "duplicate_email", "email")
    assert (
        client.http.get(f"/patients/{other['id']}", headers=AUTH).json_body["email"] == "someone@example.com"
    )


def test_update_to_own_email_is_allowed(client: Any) -> None:
    created = create(client)

    assert put(client, created["id"], {"email": "JOHN.doe@example.com"}).status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "a@example.com"}, "name"),
        ({"name": "A"}, "email"),
        ({"name": "", "email": "a@example.com"}, "name"),
        ({"name": "   ", "email": "a@example.com"}, "name"),
        ({"name": 42, "email": "a@example.com"}, "name"),
        ({"name": None, "email": "a@example.com"}, "name"),
        ({"name": ["A"], "email": "a@example.com"}, "name"),
        ({"name": "A" * 201, "email": "a@example.com"}, "name"),
        ({"name": "A\u0000B", "email": "a@example.com"}, "name"),
        # Nothing visible: zero-width and format characters, Hangul fillers, the braille blank.
        ({"name": "\u200b", "email": "a@example.com"}, "name"),
        ({"name": " \u200b\ufeff\u2060 ", "email": "a@example.com"}, "name"),
        ({"name": "\u3164\u115f\u1160\uffa0", "email": "a@example.com"}, "name"),
        ({"name": "\u2800", "email": "a@example.com"}, "name"),
        ({"name": "\u00ad\u034f\ufe0f", "email": "a@example.com"}, "name"),
        # The length is the schema's, of the value as sent: trimming does not make room.
        ({"name": " " + "A" * 200, "email": "a@example.com"}, "name"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "email": ""}, "email"),
        ({"name": "A", "email": 7}, "email"),
        ({"name": "A", "email": "a" * 250 + "@example.com"}, "email"),
        ({"name": "A", "email": "a@example.com", "phone": "call me"}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": "1-800-FLOWERS"}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": 5551234567}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": ""}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": "1" * 40}, "phone"),
        ({"name": "A", "email": "a@example.com", "role": "admin"}, "role"),
    ],
)
def test_create_validation_names_the_field(client: Any, body: dict[str, Any], field: str) -> None:
    assert_error(post(client, body), 400, "validation_failed", field)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A", "email": "a@localhost"}, "email"),
        ({"name": "A", "email": "a..b@example.com"}, "email"),
        ({"name": "A", "email": "a@example.com", "phone": "12"}, "phone"),
        ({"name": "A", "email": "a@example.com", "phone": "0000000000000000000000000000000"}, "phone"),
    ],
)
def test_values_that_fit_the_schema_but_fail_their_check_are_422(
    client: Any, body: dict[str, Any], field: str
) -> None:
    # The schema's pattern cannot say what email-validator or phonenumbers accept: such a value is
    # well-formed (so not a 400) and still refused, with the same code and field.
    assert_error(post(client, body), 422, "validation_failed", field)


def test_a_name_with_one_visible_character_among_invisible_ones_is_kept(client: Any) -> None:
    patient = create(client, name="\u200bA\u200d", email="zw@example.com")

    assert patient["name"] == "\u200bA\u200d"


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{bad json", "malformed_request"),
        ("[1, 2]", "malformed_request"),
        ('"text"', "malformed_request"),
        ("", "malformed_request"),
        ("null", "malformed_request"),
        ('{"name": NaN}', "malformed_request"),
        (b'{"name": "\xff\xfe"}', "malformed_request"),
        ("[" * 100000 + "]" * 100000, "payload_too_large"),
        ("[" * 30000 + "]" * 30000, "malformed_request"),
    ],
)
def test_malformed_bodies_are_client_errors(client: Any, raw: Any, code: str) -> None:
    response = post(client, raw)

    assert response.status_code in (400, 413)
    assert_error(response, response.status_code, code)


def test_update_rejects_empty_and_unknown(client: Any) -> None:
    created = create(client)

    assert_error(put(client, created["id"], {}), 400, "validation_failed")
    assert_error(put(client, created["id"], {"id": 7}), 400, "validation_failed", "id")
    assert_error(put(client, created["id"], {"email": "nope"}), 400, "validation_failed", "email")


def test_wrong_content_type_is_415(client: Any) -> None:
    response = post(client, json.dumps(JOHN), headers={**AUTH, "Content-Type": "text/plain"})

    assert_error(response, 415, "unsupported_media_type")


def test_name_is_trimmed_and_email_normalized(client: Any) -> None:
    patient = create(client, name="  Jane Doe  ", email="Jane.Doe@EXAMPLE.com", phone=" +44 20 7946 0958 ")

    assert patient["name"] == "Jane Doe"
    assert patient["email"] == "Jane.Doe@example.com"
    assert patient["phone"] == "+44 20 7946 0958"
