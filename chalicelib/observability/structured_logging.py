"""JSON log lines for the API and the worker: one shape, configured in one place.

Every line is one JSON object: ``timestamp``, ``level``, ``logger``, ``message``,
the fields the caller passes in ``extra=``, and the fields bound to the request
or task being served (``request_id`` in the API, ``correlation_id`` and
``notification_id`` in the worker), so a change can be followed from the API's
access line through the outbox to the worker's delivery line. Callers log ids
and states, never patient data.

On a terminal (``LOG_FORMAT=console``) the same records print as one readable
line each: ``12:00:01 INFO GET /patients/{patient_id} 200 1.2ms req=…``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from types import MappingProxyType
from typing import IO

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


# What every LogRecord holds; anything else on a record came from ``extra=`` or the bound context.
STANDARD_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``message``, ``level``, ``logger``, the error if any, the
    record's own fields, then ``timestamp`` (UTC, ISO 8601).

    Ours rather than python-json-logger's: the access line is written on every request, and this
    writes it in about half the time (one ``json.dumps``, no per-record field renaming).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "message": record.getMessage(),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for name, value in record.__dict__.items():
            if name not in STANDARD_RECORD_FIELDS:
                line[name] = value
        line["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
        return json.dumps(line, default=_json_value)


def _json_value(value: object) -> object:
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    return str(value)


ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class ConsoleFormatter(logging.Formatter):
    """One line per record for a person at a terminal: time, level, what happened, then its fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in STANDARD_RECORD_FIELDS}
        if all(name in fields for name in ACCESS_FIELDS):  # the API's access line
            method, route, status, duration = (fields.pop(name) for name in ACCESS_FIELDS)
            what = f"{method} {route or '-'} {status} {'-' if duration is None else f'{duration}ms'}"
        else:
            what = f"{record.name}: {record.getMessage()}"
        request_id = fields.pop("request_id", None)
        parts = [self.formatTime(record, "%H:%M:%S"), record.levelname, what]
        parts += [f"{name}={value}" for name, value in fields.items() if value is not None]
        if request_id is not None:
            parts.append(f"req={request_id}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


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
    _use_format(handler, JsonFormatter())
    return handler


def configure_logging(level: str | int, *, in_lambda: bool = False, console: bool = False) -> None:
    """Make the process log at ``level``, JSON lines (or ``console`` lines). Safe to call more than once.

    In Lambda the runtime's own handler on the root logger already writes to the
    function's log stream: it keeps doing so, with our format. Elsewhere one
    handler on stdout serves the whole process (Celery's own lines included); the
    bare handler of ``logging.basicConfig``, which ``chalice local`` installs
    before it loads the app, would print every line a second time and goes.
    """
    root = logging.getLogger()
    root.setLevel(level)
    if in_lambda and root.handlers:
        for handler in root.handlers:
            _use_format(handler, JsonFormatter())
        return
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and not _is_ours(handler):
            root.removeHandler(handler)
    ours = [handler for handler in root.handlers if isinstance(handler, StdoutHandler)]
    if not ours and not any(_is_ours(handler) for handler in root.handlers):
        ours = [StdoutHandler()]
        root.addHandler(ours[0])
    for handler in ours:
        _use_format(handler, ConsoleFormatter() if console else JsonFormatter())


def _is_ours(handler: logging.Handler) -> bool:
    return isinstance(handler.formatter, (JsonFormatter, ConsoleFormatter))


def _use_format(handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    if not any(isinstance(existing, BoundFieldsFilter) for existing in handler.filters):
        handler.addFilter(BoundFieldsFilter())
