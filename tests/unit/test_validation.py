"""Field rules for patient input, without a database."""

from __future__ import annotations

import pytest

from chalicelib.errors import MalformedRequest, ValidationFailed
from chalicelib.paging import per_page_parameter
from chalicelib.patients.fields import parse_patient_create, parse_patient_update, parse_phone
from chalicelib.validation import parse_patient_id


def test_create_fills_missing_phone_with_none() -> None:
    values = parse_patient_create({"name": " Ann ", "email": "Ann@Example.COM"}, phone_region="US")

    assert values == {
        "name": "Ann",
        "email": "Ann@example.com",
        "email_key": "ann@example.com",
        "phone": None,
        "phone_e164": None,
        "name_prefixes": '["a","an","ann"]',  # what a search by name finds it by
    }


def test_update_returns_only_given_fields() -> None:
    assert parse_patient_update({"phone": None}, phone_region="US") == {"phone": None, "phone_e164": None}


def test_phone_keeps_what_the_client_wrote_and_normalizes_beside_it() -> None:
    assert parse_phone(" (415) 555-0100 ", "US") == ("(415) 555-0100", "+14155550100")
    assert parse_phone("+44 20 7946 0958", "US") == ("+44 20 7946 0958", "+442079460958")


@pytest.mark.parametrize("payload", [[], "x", 3, None])
def test_non_objects_are_malformed(payload: object) -> None:
    with pytest.raises(MalformedRequest):
        parse_patient_create(payload, phone_region="US")


def test_long_unknown_field_names_are_cut_in_the_message() -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_patient_update({"x" * 500: 1}, phone_region="US")

    assert len(raised.value.message) < 80


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1", 1),
        ("9223372036854775807", 2**63 - 1),
        ("0", None),
        ("-3", None),
        ("٣", None),
        ("9223372036854775808", None),
        ("1e3", None),
        ("", None),
    ],
)
def test_patient_ids(raw: str, expected: int | None) -> None:
    assert parse_patient_id(raw) == expected


def test_integer_parameter_bounds() -> None:
    per_page = per_page_parameter(default=1, maximum=5)

    assert per_page.parse_or_default(None) == 1
    assert per_page.parse_or_default("5") == 5
    with pytest.raises(ValidationFailed, match="at most 5"):
        per_page.parse_or_default("6")
    with pytest.raises(ValidationFailed, match="at most 5"):
        per_page.parse_or_default("9" * 5000)
