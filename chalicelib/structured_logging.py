"""JSON log lines for the API and the worker: one shape, configured in one place.

Every line is one JSON object: ``timestamp``, ``level``, ``logger``, ``message``,
the fields the caller passes in ``extra=``, and the fields bound to the request
or task being served (``request_id`` in the API, ``correlation_id`` and
``notification_id`` in the worker), so a change can be followed from the API's
access line through the outbox to the worker's delivery line. Callers log ids
and states, never patient data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import IO

from pythonjsonlogger.json import JsonFormatter

_bound_fields: ContextVar[Mapping[str, object]] = ContextVar("bound_log_fields", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (those not None) to every line logged in this context."""
    token = _bound_fields.set(
        {**_bound_fields.get(), **{name: value for name, value in fields.items() if value is not None}}
    )
    try:
        yield
    finally:
        _bound_fields.reset(token)


class BoundFieldsFilter(logging.Filter):
    """Copies the context's bound fields onto each record (a field passed explicitly wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _bound_fields.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "{message}{levelname}{name}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stdout`` as it is at each line: test runners swap it and close the old one."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> IO[str]:
        return sys.stdout

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


def json_log_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing JSON lines with the bound fields to ``stream`` (stdout by default)."""
    handler = logging.StreamHandler(stream) if stream is not None else StdoutHandler()
    _make_json(handler)
    return handler


def configure_logging(level: str | int, *, in_lambda: bool = False) -> None:
    """Make the process log JSON lines at ``level``. Safe to call more than once.

    In Lambda the runtime's own handler on the root logger already writes to the
    function's log stream: it keeps doing so, with our format. Elsewhere one
    handler on stdout serves the whole process (Celery's own lines included).
    """
    root = logging.getLogger()
    root.setLevel(level)
    if in_lambda and root.handlers:
        for handler in root.handlers:
            _make_json(handler)
    elif not any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers):
        root.addHandler(json_log_handler())


def _make_json(handler: logging.Handler) -> None:
    handler.setFormatter(json_formatter())
    if not any(isinstance(existing, BoundFieldsFilter) for existing in handler.filters):
        handler.addFilter(BoundFieldsFilter())
