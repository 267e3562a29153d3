"""How a name is searched: its words without case or accents, and every prefix of each word.

``name_words`` is the one normalization, applied to stored names and to queries alike: Unicode
NFKD with the combining marks dropped ("Jöhn Dőe" → "john doe"), case-folded, apostrophes
removed ("O'Brien" → "obrien"), split on anything that is not a letter or digit. Each stored
patient carries the prefixes of its words (``name_prefixes_json``, a JSON array in
``patients.name_prefixes``); the database copies them into ``patient_name_prefixes``
(prefix, patient_id) in the same statement (triggers of migration 0011), where an equality on
the prefix walks the matching patients in id order. Why this index and not pg_trgm or unaccent:
docs/benchmarks.md#search.
"""

from __future__ import annotations

import json
import re
import unicodedata

_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
_WORD = re.compile(r"[^\W_]+")


def name_words(text: str) -> list[str]:
    """The words of ``text`` without accents, case or punctuation, in order (duplicates kept)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    # casefold() can yield characters that decompose again (rare): normalize once more.
    folded = unicodedata.normalize("NFKD", bare.casefold())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    return _WORD.findall(_APOSTROPHES.sub("", folded))


def name_prefixes(name: str) -> list[str]:
    """Every prefix (from one character) of every word of ``name``, each once, sorted."""
    return sorted({word[:end] for word in name_words(name) for end in range(1, len(word) + 1)})


def name_prefixes_json(name: str) -> str:
    """``name_prefixes`` as the JSON array the database's triggers expand (``patients.name_prefixes``)."""
    return json.dumps(name_prefixes(name), ensure_ascii=False, separators=(",", ":"))
