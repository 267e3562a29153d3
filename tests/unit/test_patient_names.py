"""How names are searched: one normalization for stored names and queries, and the migration's frozen copy."""

from __future__ import annotations

import importlib
import json

import pytest

from chalicelib.patients.names import name_prefixes, name_prefixes_json, name_words

NAMES = [
    "John Doe",
    "Jöhn Dőe",
    "JOAN O'Brien-Smith",
    "Zoë  Ångström",
    "Nguyễn Thị Minh",
    "Straße ﬁnn",
    "Łukasz",
    "李 小龍",
    "-.",
]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Jöhn Dőe", ["john", "doe"]),
        ("  JOHN   doe ", ["john", "doe"]),
        ("O'Brien-Smith", ["obrien", "smith"]),
        ("O\u2019Brien", ["obrien"]),
        ("Straße", ["strasse"]),  # case folding, not lower()
        ("ﬁnn", ["finn"]),  # compatibility decomposition of the ligature
        ("Zoë_Ångström", ["zoe", "angstrom"]),
        ("-.", []),
    ],
)
def test_words_lose_case_accents_and_punctuation(text: str, words: list[str]) -> None:
    assert name_words(text) == words


def test_every_prefix_of_every_word_once() -> None:
    assert name_prefixes("Ann Anna") == ["a", "an", "ann", "anna"]
    assert json.loads(name_prefixes_json("Jöhn Dőe")) == ["d", "do", "doe", "j", "jo", "joh", "john"]


@pytest.mark.parametrize("name", NAMES)
def test_the_migrations_frozen_copy_computes_what_the_application_does(name: str) -> None:
    migration = importlib.import_module("chalicelib.storage.migrations.versions.0011_search_indexes")
    assert migration.name_prefixes_json(name) == name_prefixes_json(name)
