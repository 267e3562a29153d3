"""The patterns the OpenAPI document publishes are the ones the parsers enforce, read alike everywhere.

A client validates with the document's patterns (ECMA-262 regexes; schemathesis reads them with
Rust's regex through jsonschema_rs); the API enforces them with Python's ``re``. Each value below
must get the same answer from both, and the parser must refuse exactly what the pattern refuses.
"""

from __future__ import annotations

import re
from datetime import datetime

import jsonschema_rs
import pytest
from schemathesis.core.jsonschema import FANCY_REGEX_OPTIONS

from chalicelib.errors import UnacceptableValue, ValidationFailed
from chalicelib.patients.fields import EMAIL, NAME, PHONE
from chalicelib.patients.preconditions import (
    IF_NONE_MATCH,
    MAX_HEADER_LENGTH,
    TAG_CONDITION_PATTERN,
    parse_tag_condition,
)
from chalicelib.validation import (
    TIMESTAMP,
    VISIBLE_TEXT,
    TextField,
    TextParameter,
    TimestampParameter,
)

INVISIBLE_ALONE = ["\u200b", "\u200c\u200d", "\ufeff", "\u2060", "\u3164", "\u115f\u1160", "\uffa0", "\u2800"]
INVISIBLE_ALONE += [
    "\u00ad",
    "\u034f",
    "\ufe0f",
    "\u180e",
    "\u17b4",
    "\u3000",
    "\u00a0",
    "\u2028",
    " \u200b ",
]
TEXT_SAMPLES = [
    *INVISIBLE_ALONE,
    "John",
    " John ",
    "\u200bA",
    "Zoë",
    "李小龍",
    "😀",
    "A\n",
    "A\u0000",
    "A\u202eB",
    "A\u2066",
    "",
]
EMAIL_SAMPLES = ["a@example.com", " a@example.com ", "a@b", "not-an-email", "a@@b", "a b@c.com", "@b.com"]
EMAIL_SAMPLES += ["a@", "a\u200b@b.com", "ü@例え.jp", "a@b.com\n"]
PHONE_SAMPLES = ["123-456-7890", "+44 20 7946 0958", " (415) 555-0100 ", "+1 (415) 555.0100", "12", "+"]
PHONE_SAMPLES += ["call me", "1-800-FLOWERS", "+ 1", "1x", "٣٣٣", "1\n", "--", "0" * 31]
TIMESTAMP_SAMPLES = ["2026-01-31", "2026-01-31T09:30", "2026-01-31T09:30:00Z", "2026-01-31T09:30:00.5+02:00"]
TIMESTAMP_SAMPLES += ["2026-02-30", "2026-13-01T25:61", "yesterday", "2026-01-31 09:30", "2026-01-31T09"]
TIMESTAMP_SAMPLES += ["2026-01-31T09:30:00.1234567", "2026-01-31T09:30z", "٢٠٢٦-01-31", "+2026-01-31"]
TAG_SAMPLES = ['"3"', "*", " * ", 'W/"3", "4"', ', "4",,', '""', '"a,b"', '"é"', '\t"3"\t', ""]
TAG_SAMPLES += [
    "3",
    '"3" "4"',
    '*, "3"',
    "R",
    "uG_f:",
    '"',
    "__main__",
    "|{gosyi\t#m",
    ",,,",
    'w/"3"',
    '"3"\n',
]


def rust_validator(pattern: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(
        {"type": "string", "pattern": pattern}, pattern_options=FANCY_REGEX_OPTIONS
    )


@pytest.mark.parametrize(
    "pattern, samples",
    [
        (NAME.pattern, TEXT_SAMPLES),
        (EMAIL.pattern, EMAIL_SAMPLES),
        (PHONE.pattern, PHONE_SAMPLES),
        (TIMESTAMP, TIMESTAMP_SAMPLES),
        (TAG_CONDITION_PATTERN, TAG_SAMPLES),
    ],
    ids=["text", "email", "phone", "timestamp", "tag-condition"],
)
def test_python_and_the_schema_validator_read_each_pattern_alike(pattern: str, samples: list[str]) -> None:
    compiled, published = re.compile(pattern), rust_validator(pattern)

    for value in samples:
        assert bool(compiled.fullmatch(value)) == published.is_valid(value), repr(value)


@pytest.mark.parametrize("value", INVISIBLE_ALONE)
def test_a_name_without_a_visible_character_is_refused(value: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        NAME.parse(value)

    assert refused.value.field == "name"
    assert not isinstance(refused.value, UnacceptableValue)


@pytest.mark.parametrize("field", [NAME, EMAIL, PHONE], ids=lambda field: field.name)
@pytest.mark.parametrize("value", TEXT_SAMPLES + EMAIL_SAMPLES + PHONE_SAMPLES)
def test_a_text_field_refuses_exactly_what_its_schema_refuses(field: TextField, value: str) -> None:
    fits = len(value) <= field.max_length and rust_validator(field.pattern).is_valid(value)

    try:
        parsed = field.parse(value)
    except ValidationFailed:
        assert not fits, repr(value)
    else:
        assert fits, repr(value)
        assert parsed == value.strip()


def test_the_length_limit_applies_to_the_value_as_sent() -> None:
    assert NAME.parse(" " + "A" * (NAME.max_length - 1)) == "A" * (NAME.max_length - 1)
    with pytest.raises(ValidationFailed, match="at most 200"):
        NAME.parse(" " + "A" * NAME.max_length)


def test_a_query_text_parameter_follows_the_same_pattern() -> None:
    principal = TextParameter("principal", 255, "Whose events.")

    assert principal.json_schema()["pattern"] == VISIBLE_TEXT
    assert principal.parse("clinic\u200b") == "clinic\u200b"
    with pytest.raises(ValidationFailed):
        principal.parse("\u200b")


@pytest.mark.parametrize("value", TIMESTAMP_SAMPLES)
def test_a_timestamp_that_breaks_the_pattern_is_a_400_and_one_that_names_no_moment_a_422(value: str) -> None:
    since = TimestampParameter("since", "From when.")
    fits = rust_validator(TIMESTAMP).is_valid(value)

    try:
        parsed = since.parse(value)
    except UnacceptableValue:
        assert fits, repr(value)
    except ValidationFailed:
        assert not fits, repr(value)
    else:
        assert fits and isinstance(parsed, datetime), repr(value)


@pytest.mark.parametrize(
    "value", ["2026-02-30", "2026-01-31T24:00", "2026-01-31T09:60", "2026-01-31T09:30+01:60", "0000-01-01"]
)
def test_well_formed_timestamps_that_do_not_exist_are_unacceptable(value: str) -> None:
    with pytest.raises(UnacceptableValue) as refused:
        TimestampParameter("until", "Until when.").parse(value)

    assert (refused.value.code, refused.value.field) == ("validation_failed", "until")


def test_moving_to_utc_past_the_calendar_is_unacceptable() -> None:
    with pytest.raises(UnacceptableValue):
        TimestampParameter("since", "From when.").parse("0001-01-01T00:00:00+01:00")


@pytest.mark.parametrize("value", TAG_SAMPLES + [" " * MAX_HEADER_LENGTH + "*"])
def test_a_tag_condition_is_refused_exactly_when_its_schema_refuses_it(value: str) -> None:
    fits = len(value) <= MAX_HEADER_LENGTH and rust_validator(TAG_CONDITION_PATTERN).is_valid(value)

    try:
        parse_tag_condition(IF_NONE_MATCH, value)
    except ValidationFailed as refused:
        assert not fits, repr(value)
        assert refused.field == IF_NONE_MATCH
    else:
        assert fits, repr(value)
