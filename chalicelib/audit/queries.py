"""Queries over the ``audit_events`` and ``audit_disclosures`` tables: rows appended or counted, reads
that record themselves (``read_disclosing``), and the trail read newest first.

Both work on the transaction's connection, never a Session: every request
appends a row (``chalicelib.audit.service.record_outcome``), and the ORM would
add a third to that cost.

One module, over 300 lines, on purpose: the audited read's one statement (``read_disclosing``) is
composed of the same INSERTs the repository runs alone (the row, its disclosures, the commit
without a flush wait), and the trail's reader walks the indexes those INSERTs fill.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    ARRAY,
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    true,
    union,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from chalicelib.storage.models import AuditDisclosure, AuditEvent, AuditEventRecord, DisclosedRows

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
# The rows the partial unique index on (principal, window_start) holds: refusals counted by minute.
_REFUSAL_ROWS = _events.window_start.isnot(None)
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


AUDIT_DISCLOSURES = cast(Table, AuditDisclosure.__table__)
_disclosures = AUDIT_DISCLOSURES.c
# SQLite: the disclosures of one event from a JSON array of patient ids, in one statement (an
# executemany of 100 rows costs about a millisecond in SQLAlchemy's per-row parameter handling).
_SQLITE_PATIENTS = func.json_each(bindparam("patient_ids")).table_valued("value")
_INSERT_DISCLOSURES_SQLITE = insert(AUDIT_DISCLOSURES).from_select(
    [_disclosures.patient_id, _disclosures.event_id],
    select(_SQLITE_PATIENTS.c.value, bindparam("event_id")).distinct(),
)

# The SQL status of a read, over the CTE of the rows it read (``read_disclosing``'s ``status``).
StatusRule = Callable[[CTE], ColumnElement[int]]
# The names of read_disclosing's own bound values, kept apart from the caller's.
_AUDIT_PARAMETER = "audit_{}"
_POSITION = "disclosure_position"
# No page is this long: "disclose every row" as a bound value.
_EVERY_ROW = 2**31 - 1
# The status of a read without an audit context (nothing is recorded; it is only returned).
_SUCCESS = 200


class _Action(Protocol):
    @property
    def success_status(self) -> int: ...


class AuditContext(Protocol):
    """What ``read_disclosing`` needs of ``chalicelib.audit.recording.AuditContext``."""

    @property
    def action(self) -> _Action: ...

    def row(self, *, status: int | None) -> AuditRow: ...


def read_disclosing(
    connection: Connection,
    rows: Select[Any],
    context: AuditContext | None,
    *,
    params: Mapping[str, Any] | None = None,
    order_by: Sequence[str] = ("id",),
    shown: int | None = None,
    status: StatusRule | None = None,
    columns: Sequence[ColumnElement[Any]] = (),
    wait_for_flush: bool = True,
) -> DisclosedRows:
    """Read ``rows`` (patient rows), append the request's audit row and name the patients shown
    (``audit_disclosures``), all at once: on PostgreSQL one statement (one round trip).

    How to use it, for any answer that shows patients (a read by id, a list or search page):

    * ``rows`` is a ``Select`` whose columns include the patient's ``id``, ordered by the
      columns named in ``order_by`` (ascending; each one of its selected columns, which the
      answer's order and the choice of the ``shown`` rows follow), built once at import if it can be: each
      distinct ``Select`` object caches its own statement. Its bound values go in ``params``
      (the names ``audit_*`` are this function's).
    * ``shown``: how many of the rows the answer shows, when ``rows`` reads one more to tell
      whether a next page exists; only those are disclosed. None: all of them.
    * ``status``: the status the audit row records, as SQL over the CTE of the rows (e.g. 404
      when it is empty); 200 (the action's ``success_status``) if None. Patients are disclosed
      only when it is the action's success status.
    * ``columns``: scalar values computed in the same statement (labelled), such as a total;
      uncorrelated subqueries, evaluated once.
    * ``context``: the request's ``AuditContext`` (its principal, action, request id and the
      path's patient go on the row); None reads without recording anything.
    * ``wait_for_flush=False`` (a read, ``AUDIT_READ_COMMIT=async``): on PostgreSQL the
      statement commits without waiting for its WAL flush, as ``AuditEventRepository.add``.

    Run it on a connection whose transaction commits what it writes and nothing else: on
    PostgreSQL an autocommit connection (the statement commits itself), on SQLite, which has no
    data-modifying CTEs, a write transaction (BEGIN IMMEDIATE: a SELECT, the audit row, the
    disclosures, then COMMIT). ``ReadTransaction(audit=context).disclosing(...)`` is such a
    transaction, commits it, and marks ``context`` recorded, so that the route wrapper writes
    no second row: a service calls ``reads.read_disclosing(rows, ...)`` inside it. Raises what
    the database raises (nothing is then written; ``ReadTransaction`` turns it into
    AuditUnavailable, a 503, and the wrapper records that). A search page, for instance::

        # the handler: ReadTransaction(audit=audit), durable_audit=settings.durable_read_audit
        with reads.disclosing(durable=durable_audit) as read:
            page = read.read_disclosing(_SEARCH_PAGE, params={..., "limit": per_page + 1}, shown=per_page)
        patients = [PatientRecord(*row) for row in page.rows[:per_page]]

    (``_SEARCH_PAGE``: a module-level ``Select`` of ``_PATIENT_RECORD``'s columns ordered by ``id``;
    pass ``order_by`` when it is ordered by other columns it selects, e.g. ``("name_key", "id")``.)
    """
    dialect = connection.dialect.name
    in_one_statement = context is not None and dialect == "postgresql"
    statement = _disclosing_statement(
        rows, tuple(order_by), status, tuple(columns), in_one_statement, wait_for_flush
    )
    values: dict[str, Any] = {
        **(params or {}),
        _AUDIT_PARAMETER.format("shown"): _shown(shown),
        _AUDIT_PARAMETER.format("success"): context.action.success_status if context else _SUCCESS,
    }
    if in_one_statement:
        assert context is not None
        for name, value in context.row(status=None).items():
            values[_AUDIT_PARAMETER.format(name)] = value
    result = _split(connection.execute(statement, values).all(), rows, columns)
    if context is not None and not in_one_statement:
        _record_in_transaction(connection, context, result, shown)
    return result


def _shown(shown: int | None) -> int:
    return _EVERY_ROW if shown is None else shown


def _split(
    fetched: Sequence[Row[Any]], rows: Select[Any], columns: Sequence[ColumnElement[Any]]
) -> DisclosedRows:
    # Each row: status, the extra columns, the position (NULL when nothing was read), the caller's.
    first = fetched[0]
    names = [column.name for column in rows.selected_columns]
    extra = {column.name: first[1 + index] for index, column in enumerate(columns)}
    start = 2 + len(columns)
    read = [tuple(row[start : start + len(names)]) for row in fetched if row[start - 1] is not None]
    ids = [int(row[names.index("id")]) for row in read]
    return DisclosedRows(int(first[0]), read, ids, extra)


def _record_in_transaction(
    connection: Connection, context: AuditContext, result: DisclosedRows, shown: int | None
) -> None:
    """SQLite's half of ``read_disclosing``: the audit row and the disclosures, in the transaction."""
    row = context.row(status=result.status)
    inserted = connection.execute(_INSERT, row).inserted_primary_key
    if result.status != context.action.success_status or inserted is None:
        return
    # The patient the row itself names (a read by id) is accounted for by the row.
    shown_ids = [
        patient_id for patient_id in result.patient_ids[: _shown(shown)] if patient_id != row["patient_id"]
    ]
    _disclose_in_transaction(connection, inserted[0], shown_ids)


def _disclose_in_transaction(connection: Connection, event_id: int, patient_ids: Sequence[int]) -> None:
    if patient_ids:
        values = {"event_id": event_id, "patient_ids": json.dumps(list(patient_ids))}
        connection.execute(_INSERT_DISCLOSURES_SQLITE, values)


@lru_cache(maxsize=64)
def _disclosing_statement(
    rows: Select[Any],
    order_by: tuple[str, ...],
    status: StatusRule | None,
    columns: tuple[ColumnElement[Any], ...],
    in_one_statement: bool,
    wait_for_flush: bool,
) -> Select[Any]:
    """The statement of ``read_disclosing``, built once per distinct set of arguments: building it
    and its cache key costs more than running it (the arguments are module-level constants)."""
    read = rows.cte("read_rows")
    numbered = select(
        read, func.row_number().over(order_by=[read.c[name] for name in order_by]).label(_POSITION)
    ).cte("numbered_rows")
    success = sql_cast(bindparam(_AUDIT_PARAMETER.format("success")), Integer)
    outcome_status = (status(read) if status is not None else success).label("status")
    if in_one_statement:
        outcome = _audit_row_returning(outcome_status, wait_for_flush)
        disclosures = insert(AUDIT_DISCLOSURES).from_select(
            [_disclosures.patient_id, _disclosures.event_id],
            select(numbered.c.id, outcome.c.id)
            .select_from(numbered.join(outcome, true()))  # the one audit row, beside each row read
            .where(
                outcome.c.status == success,
                numbered.c[_POSITION] <= bindparam(_AUDIT_PARAMETER.format("shown")),
                # The patient the row itself names (a read by id) is accounted for by the row.
                numbered.c.id.is_distinct_from(
                    sql_cast(bindparam(_AUDIT_PARAMETER.format("patient_id")), BigInteger)
                ),
            )
            .distinct(),
        )
        status_column: ColumnElement[Any] = outcome.c.status
    else:
        outcome = select(outcome_status).cte("outcome")
        status_column = outcome.c.status
    statement = (
        select(
            status_column,
            *columns,
            numbered.c[_POSITION],
            *(numbered.c[column.name] for column in rows.selected_columns),
        )
        .select_from(outcome.outerjoin(numbered, true()))
        .order_by(numbered.c[_POSITION])
    )
    if in_one_statement:
        # Referenced by nothing it returns; PostgreSQL runs a data-modifying CTE all the same.
        statement = statement.add_cte(disclosures.cte("disclosures"))
    return statement


@lru_cache(maxsize=2)
def _row_with_disclosures(wait_for_flush: bool) -> Any:
    """PostgreSQL: the row (``audit_*`` values) and one disclosure per id of the ``audit_disclosed``
    array, in one statement."""
    status = sql_cast(bindparam(_AUDIT_PARAMETER.format("status")), _events.status.type)
    event = _audit_row_returning(status, wait_for_flush)
    patients = (
        func.unnest(sql_cast(bindparam(_AUDIT_PARAMETER.format("disclosed")), ARRAY(BigInteger)))
        .table_valued("patient_id")
        .render_derived()
    )
    return insert(AUDIT_DISCLOSURES).from_select(
        [_disclosures.patient_id, _disclosures.event_id],
        select(patients.c.patient_id, event.c.id).select_from(event.join(patients, true())),
    )


def _audit_row_returning(status: ColumnElement[int], wait_for_flush: bool) -> CTE:
    """INSERT INTO audit_events … RETURNING id, status, as a CTE: the request's row (its values
    bound as ``audit_<column>``), its status computed by the statement."""
    given = [column for column in _ROW_COLUMNS if column is not _events.status]
    values = select(
        *(sql_cast(bindparam(_AUDIT_PARAMETER.format(column.name)), column.type) for column in given),
        status,
    )
    if not wait_for_flush:
        values = values.select_from(_COMMIT_WITHOUT_FLUSH_WAIT)
    return (
        insert(AUDIT_EVENTS)
        .from_select([*given, _events.status], values)
        .returning(_events.id, _events.status)
        .cte("audit_event")
    )


class AuditEventRepository:
    """Appends to the trail inside a ``UnitOfWork``, on its connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, row: AuditRow, *, wait_for_flush: bool = True, disclosed: Sequence[int] = ()) -> None:
        """Append ``row``, and name the patients ``disclosed`` by its answer with it. With
        ``wait_for_flush=False`` on PostgreSQL, the statement's own transaction commits without
        waiting for its WAL record to reach the disk (the row is visible at once); it must then
        be the transaction's only statement.

        With disclosures, PostgreSQL writes both in one statement (a data-modifying CTE); SQLite
        in two, so the transaction must hold them (``UnitOfWork.disclosing()``).
        """
        patients = list(dict.fromkeys(disclosed))
        if patients and self._connection.dialect.name == "postgresql":
            values = {_AUDIT_PARAMETER.format(name): value for name, value in row.items()}
            values[_AUDIT_PARAMETER.format("disclosed")] = patients
            self._connection.execute(_row_with_disclosures(wait_for_flush), values)
            return
        if patients:
            inserted = self._connection.execute(_INSERT, row).inserted_primary_key
            assert inserted is not None
            _disclose_in_transaction(self._connection, inserted[0], patients)
            return
        if wait_for_flush or self._connection.dialect.name != "postgresql":
            insert_rows(self._connection, [row])
            return
        self._connection.execute(_INSERT_WITHOUT_FLUSH_WAIT, row)

    def set_window_count(self, row: AuditRow, window_start: datetime, count: int) -> None:
        """Make ``row``'s window hold ``count`` (the exact total, settled once the window ended),
        inserting the row if its first refusal never wrote it."""
        statement = _dialect_insert(self._connection)(AUDIT_EVENTS).values(
            **row, count=count, window_start=window_start
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_events.principal, _events.window_start],
                index_where=_REFUSAL_ROWS,
                set_={"count": count},
            )
        )

    def count_in_window(self, row: AuditRow, window_start: datetime) -> None:
        """Add ``row`` as the first of its principal's window, or add one to the row already there.

        One statement (INSERT … ON CONFLICT DO UPDATE on the unique (principal, window_start)
        index), so concurrent refusals never write a second row for the window.
        """
        statement = _dialect_insert(self._connection)(AUDIT_EVENTS).values(
            **row, count=1, window_start=window_start
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_events.principal, _events.window_start],
                index_where=_REFUSAL_ROWS,
                set_={"count": _events.count + 1},
            )
        )


def _dialect_insert(connection: Connection) -> Any:
    """The INSERT with ON CONFLICT of the connection's own dialect (loaded already: importing the
    other would cost cold-start time)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


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
        ``patient_id`` matches the events that name the patient (``audit_events.patient_id``: a
        read by id, a change) and those whose answer disclosed them (``audit_disclosures``: a
        list or search page, a read by id), each found newest first on its own index.
        """
        filters: list[ColumnElement[bool]] = []
        if principal is not None:
            filters.append(_events.principal == principal)
        if since is not None:
            filters.append(_events.occurred_at >= since)
        if until is not None:
            filters.append(_events.occurred_at < until)
        query = _RECORD.order_by(_events.id.desc()).limit(limit)
        if patient_id is not None:
            # The filters apply inside each branch; out here only the ids found, by primary key.
            query = query.where(_events.id.in_(_events_of_patient(patient_id, filters, before_id, limit)))
        else:
            query = query.where(*filters)
            if before_id is not None:
                query = query.where(_events.id < before_id)
        return [AuditEventRecord(*row) for row in self._connection.execute(query)]


def _events_of_patient(
    patient_id: int, filters: list[ColumnElement[bool]], before_id: int | None, limit: int
) -> Any:
    """The ids of the newest ``limit`` events naming ``patient_id`` and of the newest ``limit`` that
    disclosed them: each a backward walk of an index that leads with the patient
    (``ix_audit_events_patient_id_id``, ``pk_audit_disclosures``), their union at most 2 × ``limit`` ids."""
    named = select(_events.id).where(_events.patient_id == patient_id, *filters)
    disclosed = (
        select(_disclosures.event_id.label("id"))
        .join(AUDIT_EVENTS, _events.id == _disclosures.event_id)
        .where(_disclosures.patient_id == patient_id, *filters)
    )
    if before_id is not None:
        named = named.where(_events.id < before_id)
        disclosed = disclosed.where(_disclosures.event_id < before_id)
    # SQLite takes no ORDER BY or LIMIT in a member of a UNION: each is a subquery of its own.
    newest = [
        named.order_by(_events.id.desc()).limit(limit).subquery("named"),
        disclosed.order_by(_disclosures.event_id.desc()).limit(limit).subquery("disclosed"),
    ]
    return union(*(select(branch.c.id) for branch in newest))
