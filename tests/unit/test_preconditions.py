"""If-Match / If-None-Match parsing and comparison (RFC 9110), without a database."""

from __future__ import annotations

import pytest

from chalicelib.errors import ValidationFailed
from chalicelib.patients.preconditions import IF_MATCH, EntityTag, TagCondition, etag_for, parse_tag_condition


def test_etag_is_the_id_and_version_as_a_strong_tag() -> None:
    assert etag_for(7, 3) == '"7-3"'


def test_a_tag_matches_only_its_own_patient_and_version() -> None:
    condition = parse_tag_condition(IF_MATCH, '"7-3"')

    assert condition is not None
    assert condition.matches_strongly(7, 3) and condition.matches_weakly(7, 3)
    assert not condition.matches_strongly(8, 3) and not condition.matches_weakly(8, 3)
    assert not condition.matches_strongly(7, 4)


def test_absent_header_is_no_condition() -> None:
    assert parse_tag_condition(IF_MATCH, None) is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("*", TagCondition(any=True)),
        (" * ", TagCondition(any=True)),
        ('"3"', TagCondition(False, (EntityTag("3"),))),
        ('"1", W/"2" ,"3"', TagCondition(False, (EntityTag("1"), EntityTag("2", weak=True), EntityTag("3")))),
        ('"a,b"', TagCondition(False, (EntityTag("a,b"),))),
        (', "4",,', TagCondition(False, (EntityTag("4"),))),
        ('""', TagCondition(False, (EntityTag(""),))),
    ],
)
def test_well_formed_values(raw: str, expected: TagCondition) -> None:
    assert parse_tag_condition(IF_MATCH, raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", " ", "3", '"3', '3"', '"3" "4"', 'W/ "3"', 'w/"3"', '*, "3"', '"3"\n', '"a"b"', "," * 3, "x" * 5000]
    # Values schemathesis sent when the document published no pattern, and a padded * past maxLength.
    + ["R", "uG_f:", "|{gosyi\t#m", '"', "__main__", " " * 5000 + "*"],
)
def test_malformed_values_name_the_header(raw: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_tag_condition(IF_MATCH, raw)

    assert refused.value.field == IF_MATCH


def test_if_match_compares_strongly_and_if_none_match_weakly() -> None:
    condition = parse_tag_condition(IF_MATCH, 'W/"1-3", "1-5"')
    assert condition is not None

    assert not condition.matches_strongly(1, 3) and condition.matches_strongly(1, 5)
    assert condition.matches_weakly(1, 3) and condition.matches_weakly(1, 5)
    assert not condition.matches_strongly(1, 4) and not condition.matches_weakly(1, 4)


def test_star_matches_any_version() -> None:
    star = TagCondition(any=True)

    assert star.matches_strongly(1, 1) and star.matches_weakly(2, 99)
