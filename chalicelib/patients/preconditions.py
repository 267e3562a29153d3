"""Entity tags and conditional requests (RFC 9110, 8.8.3 and 13.1) over a patient's version.

A patient's ETag is its id and version as a strong tag, ``"7-3"`` (patient 7, version 3):
ids are never reused, so a tag names one version of one patient and can never match
another patient's, whatever URL it is sent to. ``If-Match`` makes a
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
# Far more than any client sends; a longer value is refused before it is scanned (published as
# the headers' maxLength).
MAX_HEADER_LENGTH = 4096
# An entity tag: an optional weakness prefix and a quoted opaque tag (etagc characters, which
# include the comma).
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_OWS = r"[ \t]*"
# The grammar both headers accept (RFC 9110, 13.1.1-2 and 5.6.1): "*", or a comma-separated list
# with at least one entity tag (the list syntax allows empty elements). Published as the headers'
# schema pattern and enforced as it is, so the document and the parser agree.
TAG_CONDITION_PATTERN = (
    rf"^(?:{_OWS}\*{_OWS}|(?:{_OWS},)*{_OWS}{_ENTITY_TAG}(?:{_OWS},(?:{_OWS}{_ENTITY_TAG})?)*{_OWS})$"
)
_TAG_CONDITION = re.compile(TAG_CONDITION_PATTERN)
_TAG = re.compile(r'(W/)?"([^"]*)"')
_VERSION = re.compile(r"0|[1-9][0-9]*")
# Versions are an INTEGER column: a tag naming a larger one names no version that exists.
_NO_SUCH_VERSION = 2**31


@dataclass(frozen=True)
class EntityTag:
    opaque: str
    weak: bool = False


@dataclass(frozen=True)
class TagCondition:
    """A parsed ``If-Match`` or ``If-None-Match``: ``*`` or a list of entity tags."""

    any: bool
    tags: tuple[EntityTag, ...] = ()

    def matches_strongly(self, patient_id: int, version: int) -> bool:
        """If-Match's comparison: a weak tag never matches."""
        current = opaque_tag(patient_id, version)
        return self.any or any(not tag.weak and tag.opaque == current for tag in self.tags)

    def matches_weakly(self, patient_id: int, version: int) -> bool:
        """If-None-Match's comparison: weakness is ignored."""
        current = opaque_tag(patient_id, version)
        return self.any or any(tag.opaque == current for tag in self.tags)

    def versions_of(self, patient_id: int) -> tuple[int, ...]:
        """The versions of ``patient_id`` this list names, weak or strong (If-None-Match's
        comparison, for a query to make); ``any`` is separate."""
        prefix = f"{patient_id}-"
        suffixes = (tag.opaque[len(prefix) :] for tag in self.tags if tag.opaque.startswith(prefix))
        # Exactly the versions whose tag ``opaque_tag`` would write: no sign, no leading zero.
        return tuple(int(v) for v in suffixes if _VERSION.fullmatch(v) and int(v) < _NO_SUCH_VERSION)


def opaque_tag(patient_id: int, version: int) -> str:
    return f"{patient_id}-{version}"


def etag_for(patient_id: int, version: int) -> str:
    return f'"{opaque_tag(patient_id, version)}"'


def parse_tag_condition(header: str, raw: str | None) -> TagCondition | None:
    """Parse the value of ``header`` (If-Match or If-None-Match); None when absent.

    Raises ValidationFailed naming the header when the value breaks ``TAG_CONDITION_PATTERN``
    or is longer than ``MAX_HEADER_LENGTH``.
    """
    if raw is None:
        return None
    if len(raw) > MAX_HEADER_LENGTH:
        raise ValidationFailed(f"{header} is too long", field=header)
    if not _TAG_CONDITION.fullmatch(raw):
        raise ValidationFailed(f'{header} must be * or a list of entity tags like "7-3"', field=header)
    if raw.strip(" \t") == "*":
        return TagCondition(any=True)
    # Once the whole value fits the grammar, each quoted string in it is one tag.
    return TagCondition(
        any=False, tags=tuple(EntityTag(opaque, weak=bool(weak)) for weak, opaque in _TAG.findall(raw))
    )
