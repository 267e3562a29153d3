"""Queries over the ``audit_events`` table: rows appended or counted, and the trail read newest first.

Both work on the transaction's connection, never a Session: every request
appends a row (``chalicelib.audit.service.record_outcome``), and the ORM would
add a third to that cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from chalicelib.storage.models import AuditEvent, AuditEventRecord

# The values of one audit_events row, by column name.
AuditRow = dict[str, Any]
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)
_events = AUDIT_EVENTS.c
# The columns an audit row is written with; ``id`` and ``count`` (1) come from the database.
_ROW_COLUMNS = (
    _events.occurred_at,
    _events.principal,
    _events.action,
    _events.patient_id,
    _events.status,
    _events.request_id,
)
_RECORD = select(_events.id, *_ROW_COLUMNS, _events.count)


# One statement: set_config(..., true) is SET LOCAL, so synchronous_commit is off until the end of
# the transaction this statement is (autocommit), which commits as the statement ends. No extra
# round trip, and no other transaction on the connection is affected.
_COMMIT_WITHOUT_FLUSH_WAIT = select(
    func.set_config("synchronous_commit", "off", true()).label("synchronous_commit")
).subquery("commit_without_flush_wait")
_INSERT_WITHOUT_FLUSH_WAIT = insert(AUDIT_EVENTS).from_select(
    list(_ROW_COLUMNS),
    select(*(sql_cast(bindparam(column.name), column.type) for column in _ROW_COLUMNS)).select_from(
        _COMMIT_WITHOUT_FLUSH_WAIT
    ),
)


# An insert into the table, not the class: the ORM's flush or bulk path costs more than the rows.
# Built once: building it and its cache key on every request costs more than the SQLite insert.
_INSERT = insert(AUDIT_EVENTS)


def insert_rows(executor: Session | Connection, rows: list[AuditRow]) -> None:
    executor.execute(_INSERT, rows)


class AuditEventRepository:
    """Appends to the trail inside a ``UnitOfWork``, on its connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, row: AuditRow, *, wait_for_flush: bool = True) -> None:
        """Append ``row``. With ``wait_for_flush=False`` on PostgreSQL, the statement's own
        transaction commits without waiting for its WAL record to reach the disk (the row is
        visible at once); it must then be the transaction's only statement."""
        if wait_for_flush or self._connection.dialect.name != "postgresql":
            insert_rows(self._connection, [row])
            return
        self._connection.execute(_INSERT_WITHOUT_FLUSH_WAIT, row)

    def count_in_window(self, row: AuditRow, window_start: datetime) -> None:
        """Add ``row`` as the first of its principal's window, or add one to the row already there.

        One statement (INSERT … ON CONFLICT DO UPDATE on the unique (principal, window_start)
        index), so concurrent refusals never write a second row for the window.
        """
        # The engine has loaded its own dialect already; importing the other would cost cold-start time.
        if self._connection.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
        statement = dialect.insert(AUDIT_EVENTS).values(**row, count=1, window_start=window_start)
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_events.principal, _events.window_start],
                set_={"count": _events.count + 1},
            )
        )


class AuditEventReader:
    """Reads the trail inside a ``ReadTransaction``."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def newest_first(
        self,
        *,
        limit: int,
        before_id: int | None = None,
        patient_id: int | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEventRecord]:
        """Up to ``limit`` events matching every given filter, newest (highest id) first.

        ``since`` is inclusive and ``until`` exclusive; ``before_id`` is the keyset cursor.
        """
        query = _RECORD.order_by(_events.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(_events.id < before_id)
        if patient_id is not None:
            query = query.where(_events.patient_id == patient_id)
        if principal is not None:
            query = query.where(_events.principal == principal)
        if since is not None:
            query = query.where(_events.occurred_at >= since)
        if until is not None:
            query = query.where(_events.occurred_at < until)
        return [AuditEventRecord(*row) for row in self._connection.execute(query)]
