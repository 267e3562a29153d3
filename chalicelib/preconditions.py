"""Entity tags and conditional requests (RFC 9110, 8.8.3 and 13.1) over a patient's version.

A patient's ETag is its version as a strong tag, ``"3"``. ``If-Match`` makes a
change conditional: the service compares it with the version of the row it has
locked for update, so the check and the change are one transaction.
``If-None-Match`` on a read lets a client that holds the current version skip
the body (304).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.errors import ValidationFailed

IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"
# Far more than any client sends; a longer value is refused before it is scanned.
MAX_HEADER_LENGTH = 4096
# One element of the list and its separator: an optional weakness prefix and a quoted opaque tag
# (etagc characters, which include the comma), or nothing (the list syntax allows empty elements).
LIST_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)')


@dataclass(frozen=True)
class EntityTag:
    opaque: str
    weak: bool = False


@dataclass(frozen=True)
class TagCondition:
    """A parsed ``If-Match`` or ``If-None-Match``: ``*`` or a list of entity tags."""

    any: bool
    tags: tuple[EntityTag, ...] = ()

    def matches_strongly(self, version: int) -> bool:
        """If-Match's comparison: a weak tag never matches."""
        return self.any or any(not tag.weak and tag.opaque == str(version) for tag in self.tags)

    def matches_weakly(self, version: int) -> bool:
        """If-None-Match's comparison: weakness is ignored."""
        return self.any or any(tag.opaque == str(version) for tag in self.tags)


def etag_for(version: int) -> str:
    return f'"{version}"'


def parse_tag_condition(header: str, raw: str | None) -> TagCondition | None:
    """Parse the value of ``header`` (If-Match or If-None-Match); None when absent.

    Raises ValidationFailed naming the header when the value is not ``*`` or a
    comma-separated list of entity tags (RFC 9110, 8.8.3).
    """
    if raw is None:
        return None
    if raw.strip() == "*":
        return TagCondition(any=True)
    if len(raw) > MAX_HEADER_LENGTH:
        raise ValidationFailed(f"{header} is too long", field=header)
    tags = []
    position = 0
    while position < len(raw):
        found = LIST_ELEMENT.match(raw, position)
        if found is None or found.end() == position:
            raise ValidationFailed(f'{header} must be * or a list of entity tags like "3"', field=header)
        if found.group(2) is not None:
            tags.append(EntityTag(found.group(2), weak=bool(found.group(1))))
        position = found.end()
    if not tags:
        raise ValidationFailed(f"{header} names no entity tag", field=header)
    return TagCondition(any=False, tags=tuple(tags))
