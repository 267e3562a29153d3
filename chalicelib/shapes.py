"""JSON pieces every feature's answers share: timestamps and the envelope of a numbered page.

Part of the kernel: the features' ``shapes`` modules build on it, and it imports nothing of theirs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class NumberedPage(Protocol):
    @property
    def total(self) -> int: ...
    @property
    def pages(self) -> int: ...
    @property
    def page(self) -> int | None: ...
    @property
    def per_page(self) -> int: ...


def iso_utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def page_json(page: NumberedPage, items_name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """``{total, pages, current_page, per_page, <items_name>: items}``."""
    return {
        "total": page.total,
        "pages": page.pages,
        "current_page": page.page,
        "per_page": page.per_page,
        items_name: items,
    }
