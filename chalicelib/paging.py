"""Paging of lists: the ``page`` and ``per_page`` parameters, declared once for every list."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.validation import IntegerParameter

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100

PAGE = IntegerParameter(
    "page",
    1,
    2**31 - 1,
    "Page number, from 1. Deep pages cost more (the database skips the rows before them): use `after`"
    " to walk a long list. With `after`, pages are counted from the cursor.",
    default=1,
)


def per_page_parameter(*, default: int, maximum: int, items: str = "Patients") -> IntegerParameter:
    return IntegerParameter("per_page", 1, maximum, f"{items} per page.", default=default)


def configured_per_page(items: str = "Patients") -> IntegerParameter:
    """``per_page`` with the API's default and maximum (``DEFAULT_PER_PAGE``, ``MAX_PER_PAGE``)."""
    return per_page_parameter(default=DEFAULT_PER_PAGE, maximum=MAX_PER_PAGE, items=items)


def paging_parameters() -> tuple[IntegerParameter, IntegerParameter]:
    """The query parameters of a list paged by number: page, per_page."""
    return PAGE, configured_per_page()


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        """How many rows come before the page."""
        return (self.page - 1) * self.per_page

    def pages(self, total: int) -> int:
        return math.ceil(total / self.per_page)


def next_page_number(page: int, pages: int) -> int | None:
    """The number of the page after ``page`` of ``pages``; None on the last page (or past it)."""
    return page + 1 if page < pages else None


def parse_paging(raw_page: str | None, raw_per_page: str | None) -> Paging:
    """The page asked for. Raises ValidationFailed naming the first parameter that is not valid."""
    page, per_page = paging_parameters()
    return Paging(page.parse_or_default(raw_page), per_page.parse_or_default(raw_per_page))
