"""Queries over the patient feature's tables: ``patients``, its ``row_counts`` counter, ``idempotency_keys``.

``PatientRepository`` and ``IdempotencyKeyRepository`` change rows inside a
``UnitOfWork``; ``PatientReader`` answers reads inside a ``ReadTransaction``.
Constraint violations become domain errors. The patient repository joins the unit of
work it serves: its first create or delete adds the counter's write to that commit.

One module, over 300 lines, on purpose: every statement on ``patients`` (reads, pages, the
search's joins of ``patient_name_prefixes``, the counter) is built once here from one set of
table columns, so a column's use can be read in one place.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    CTE,
    Boolean,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.errors import DuplicateEmail
from chalicelib.storage.models import (
    ROW_COUNT_SHARDS,
    DisclosedRows,
    Patient,
    PatientNamePrefix,
    PatientRecord,
    RowCount,
    StoredIdempotencyKey,
)

EMAIL_CONSTRAINT = "uq_patients_email_key"
PATIENTS_TABLE = Patient.__tablename__


class CommitSteps(Protocol):
    """What a repository needs of the unit of work it joins: a step to run before its commit."""

    def before_commit(self, step: Callable[[], None], *, last: bool = False) -> None: ...


class PatientRepository:
    """The ``patients`` rows of one transaction, and its change to their counter.

    One per transaction of the unit of work ``steps``: the creates minus deletes it has
    made are counted here until its commit writes them (``write_count_change``).
    """

    def __init__(self, session: Session, steps: CommitSteps) -> None:
        self._session = session
        self._steps = steps
        # None until the first create or delete, which registers the counter's write.
        self._count_change: int | None = None

    def get(self, patient_id: int, *, for_update: bool = False) -> Patient | None:
        return self._session.get(Patient, patient_id, with_for_update=for_update or None)

    def add(self, patient: Patient) -> Patient:
        self._session.add(patient)
        self.flush()
        self._change_count(+1)
        return patient

    def flush(self) -> None:
        """Write pending changes now, so the database's constraints decide."""
        try:
            self._session.flush()
        except IntegrityError as error:
            if _violates(error, EMAIL_CONSTRAINT, "patients.email_key"):
                raise DuplicateEmail() from None
            raise

    def delete(self, patient: Patient) -> None:
        self._session.delete(patient)
        self._session.flush()
        self._change_count(-1)

    def recount(self) -> int:
        """Set the counter from ``count(*)``: after rows were loaded or removed behind the API's back."""
        exact = self._session.scalar(select(func.count()).select_from(Patient)) or 0
        self._session.execute(
            update(RowCount)
            .where(RowCount.table_name == PATIENTS_TABLE)
            .values(row_count=case((RowCount.shard == 0, exact), else_=0)),
            execution_options={"synchronize_session": False},
        )
        return exact

    def contact(self, patient_id: int) -> tuple[str, str | None] | None:
        """The patient's email and E.164 phone, or None if the patient is gone."""
        row = self._session.execute(_CONTACT, {"patient_id": patient_id}).first()
        return (row.email, row.phone_e164) if row else None

    def _change_count(self, delta: int) -> None:
        if self._count_change is None:
            self._count_change = 0
            # Last before the commit: the counter row it locks stays locked only until then.
            self._steps.before_commit(self.write_count_change, last=True)
        self._count_change += delta

    def write_count_change(self) -> None:
        """Add the transaction's creates and deletes to the counter: the last step before its commit.

        One UPDATE ... SET row_count = row_count + delta on a shard picked at random: the
        database serializes writers on one row, so no change is lost, and writers on different
        shards never wait for each other. The row stays locked until the commit has flushed, so
        nothing else comes between.
        """
        delta, self._count_change = self._count_change or 0, None
        if not delta:
            return
        shard = random.randrange(ROW_COUNT_SHARDS)  # noqa: S311 - spreads load, not a secret
        changed = self._session.execute(_CHANGE_COUNT, {"counter_shard": shard, "delta": delta})
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            # A shard row missing (ROW_COUNT_SHARDS grown without its migration): shard 0 always exists.
            self._session.execute(_CHANGE_COUNT, {"counter_shard": 0, "delta": delta})


# The SQL status of a read over the CTE of the rows it read (``ReadRecorded``'s ``status``).
StatusRule = Callable[[CTE], ColumnElement[int]]


class ReadRecorded(Protocol):
    """A read that writes the request's audit row and names the patients it shows with it
    (``chalicelib.audit.queries.read_disclosing``, on the read transaction's connection)."""

    def __call__(
        self,
        rows: Select[Any],
        *,
        params: Mapping[str, Any] | None = None,
        shown: int | None = None,
        status: StatusRule | None = None,
        columns: Sequence[ColumnElement[Any]] = (),
    ) -> DisclosedRows: ...


class PatientReader:
    """The reads that answer patient requests, as plain records on a bare connection.

    Loading ORM objects costs more than the query itself (``make bench-baseline``),
    and an answer needs only the values. ``shown`` and ``shown_page`` answer a request and
    record it, with the patients they show, in the same statement (``read_recorded``).
    """

    def __init__(self, connection: Connection, read_recorded: ReadRecorded) -> None:
        self._connection = connection
        self._read_recorded = read_recorded

    def get(self, patient_id: int) -> PatientRecord | None:
        row = self._connection.execute(_PATIENT_BY_ID, {"patient_id": patient_id}).first()
        return PatientRecord(*row) if row else None

    def shown(
        self,
        patient_id: int,
        outcome: StatusRule,
        *,
        unchanged_versions: Sequence[int] = (),
        any_version: bool = False,
    ) -> PatientRecord | None:
        """The patient, read as the request's answer; its audit row's status is ``outcome`` (see
        ``read_outcome``), told which versions the client already holds (``If-None-Match``)."""
        params = {
            "patient_id": patient_id,
            "unchanged_versions": list(unchanged_versions),
            "any_version": any_version,
        }
        read = self._read_recorded(_PATIENT_BY_ID, params=params, status=outcome)
        return PatientRecord(*read.rows[0]) if read.rows else None

    def shown_page(
        self, *, shown: int, offset: int = 0, after: int | None = None
    ) -> tuple[int, list[PatientRecord]]:
        """The total and up to ``shown`` + 1 patients in id order (from position ``offset``, or
        after the id ``after``), read as the request's answer: the first ``shown`` are disclosed."""
        params = {"offset": offset, "limit": shown + 1}
        if after is None:
            query = _PATIENT_PAGE_AT_OFFSET
        else:
            query = _PATIENT_PAGE_AFTER_AT_OFFSET if offset else _PATIENT_PAGE_AFTER
            params["after"] = after
        read = self._read_recorded(query, params=params, shown=shown, columns=(_PATIENT_TOTAL,))
        return int(read.values[_PATIENT_TOTAL.name] or 0), [PatientRecord(*row) for row in read.rows]

    def count(self) -> int:
        """The maintained count; an exact ``count(*)`` only if the counter row is missing."""
        maintained = self._connection.scalar(_MAINTAINED_PATIENT_COUNT)
        if maintained is not None:
            return int(maintained)
        return int(self._connection.scalar(_EXACT_PATIENT_COUNT) or 0)

    def shown_search(self, criteria: PatientSearch, *, after: int, shown: int) -> list[PatientRecord]:
        """Up to ``shown`` + 1 patients matching every criterion, in id order, whose id is greater than
        ``after``, read as the request's answer: the first ``shown`` are disclosed, in the same
        statement as the request's audit row (``read_recorded``).

        Each name prefix joins its rows of ``patient_name_prefixes``, whose key lists a prefix's
        patients in id order: the database merges those lists and stops at the page.
        """
        params: dict[str, Any] = {"after": after, "limit": shown + 1, **criteria.parameters()}
        read = self._read_recorded(_search_statement(*criteria.shape()), params=params, shown=shown)
        return [PatientRecord(*row) for row in read.rows]


# Name prefixes joined to the prefix index; more than this are checked on the patient row.
JOINED_PREFIXES = 4


@dataclass(frozen=True)
class PatientSearch:
    """What a search looks for, as stored: every criterion given must hold (AND); None: not asked."""

    name_prefixes: Sequence[str] = ()  # each a prefix of a word of the name (chalicelib.patients.names)
    email_key: str | None = None
    phone_e164: str | None = None
    created_since: datetime | None = None
    updated_since: datetime | None = None

    def shape(self) -> tuple[int, int, bool, bool, bool, bool]:
        """What the statement depends on: how many prefixes joined and checked, which other criteria."""
        return (
            min(len(self.name_prefixes), JOINED_PREFIXES),
            max(len(self.name_prefixes) - JOINED_PREFIXES, 0),
            self.email_key is not None,
            self.phone_e164 is not None,
            self.created_since is not None,
            self.updated_since is not None,
        )

    def parameters(self) -> dict[str, Any]:
        joined, checked = self.name_prefixes[:JOINED_PREFIXES], self.name_prefixes[JOINED_PREFIXES:]
        values: dict[str, Any] = {f"prefix_{i}": prefix for i, prefix in enumerate(joined)}
        # A prefix is letters and digits only (chalicelib.patients.names): nothing LIKE would read.
        values.update({f"checked_{i}": f'%"{prefix}"%' for i, prefix in enumerate(checked)})
        for name in ("email_key", "phone_e164", "created_since", "updated_since"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values


# Statements built once, on the table rather than the mapped class: building SQLAlchemy
# expressions, and ORM execution, cost more per request than running the SQL.
_PATIENTS = cast(Table, Patient.__table__)
_patients = _PATIENTS.c
_PATIENT_RECORD = select(
    _patients.id,
    _patients.name,
    _patients.email,
    _patients.phone,
    _patients.version,
    _patients.created_at,
    _patients.updated_at,
)
_PATIENT_BY_ID = _PATIENT_RECORD.where(_patients.id == bindparam("patient_id"))
_PATIENT_PAGE_AFTER = (
    _PATIENT_RECORD.where(_patients.id > bindparam("after")).order_by(_patients.id).limit(bindparam("limit"))
)
# The first id of the page, found by skipping on the primary key alone.
_FIRST_ID_AT_OFFSET = (
    select(_patients.id).order_by(_patients.id).offset(bindparam("offset")).limit(1).scalar_subquery()
)
_PATIENT_PAGE_AT_OFFSET = (
    _PATIENT_RECORD.where(_patients.id >= _FIRST_ID_AT_OFFSET)
    .order_by(_patients.id)
    .limit(bindparam("limit"))
)
_FIRST_ID_AFTER_AT_OFFSET = (
    select(_patients.id)
    .where(_patients.id > bindparam("after"))
    .order_by(_patients.id)
    .offset(bindparam("offset"))
    .limit(1)
    .scalar_subquery()
)
_PATIENT_PAGE_AFTER_AT_OFFSET = (
    _PATIENT_RECORD.where(_patients.id >= _FIRST_ID_AFTER_AT_OFFSET)
    .order_by(_patients.id)
    .limit(bindparam("limit"))
)
# The shards summed: NULL when no counter row exists.
_MAINTAINED_PATIENT_COUNT = select(func.sum(RowCount.row_count)).where(RowCount.table_name == PATIENTS_TABLE)
_COUNTS = cast(Table, RowCount.__table__)
_CHANGE_COUNT = (
    update(_COUNTS)
    .where(_COUNTS.c.table_name == PATIENTS_TABLE, _COUNTS.c.shard == bindparam("counter_shard"))
    .values(row_count=_COUNTS.c.row_count + bindparam("delta"))
)
_EXACT_PATIENT_COUNT = select(func.count()).select_from(_PATIENTS)
# Both as one value computed in the page's statement: the exact count only when no counter row exists.
_PATIENT_TOTAL = func.coalesce(
    _MAINTAINED_PATIENT_COUNT.scalar_subquery(), _EXACT_PATIENT_COUNT.scalar_subquery()
).label("total")


def read_outcome(*, found: int, unchanged: int, missing: int) -> StatusRule:
    """The status of a read by id, in SQL, over the CTE of the row read: ``missing`` when it read
    none, ``unchanged`` when its version is one the client holds (the bound ``unchanged_versions``,
    or any with ``any_version``), else ``found``. The statuses are the caller's to name."""

    def status(read: CTE) -> ColumnElement[int]:
        held = or_(
            bindparam("any_version", type_=Boolean),
            read.c.version.in_(bindparam("unchanged_versions", expanding=True)),
        )
        return case(
            (~exists(select(read.c.id)), missing),
            (exists(select(read.c.id).where(held)), unchanged),
            else_=found,
        )

    return status


_PREFIXES = cast(Table, PatientNamePrefix.__table__)


@functools.cache
def _search_statement(
    prefixes: int, checked: int, email: bool, phone: bool, created_since: bool, updated_since: bool
) -> Select[Any]:
    """The search's SELECT for one combination of criteria (built once per combination).

    The first ``JOINED_PREFIXES`` name prefixes (the longest: the caller's order) each join the
    prefix index; any further ones are checked on the row's own ``name_prefixes`` (an exact JSON
    string), so a long query costs no more joins, and the answer is the same.

    For a time range alone, both planners would walk the primary key in id order and filter, on the
    assumption that matches are spread evenly over the ids; but recent rows sit at the end, so a
    recent range (the common case: what changed since the last sync) walked most of the table
    (PostgreSQL: 230 ms at 1,000,000 patients, ``make bench-search``). The id is then written
    ``id + 0``, which no index serves, so the range is read from its own index and sorted by id:
    a range's cost grows with its matches instead (docs/benchmarks.md#search-over-1000000-patients).
    """
    source: FromClause = _PATIENTS
    for i in range(prefixes):
        words = _PREFIXES.alias(f"prefix_{i}")
        # Joined on the id: the prefix lists come in id order, as the answer does.
        source = source.join(
            words, and_(words.c.patient_id == _patients.id, words.c.prefix == bindparam(f"prefix_{i}"))
        )
    id_order: ColumnElement[int] = _patients.id
    if (created_since or updated_since) and not (prefixes or email or phone):
        id_order = _patients.id + 0
    conditions = [id_order > bindparam("after")]
    conditions += [_patients.name_prefixes.like(bindparam(f"checked_{i}")) for i in range(checked)]
    if email:
        conditions.append(_patients.email_key == bindparam("email_key"))
    if phone:
        conditions.append(_patients.phone_e164 == bindparam("phone_e164"))
    if created_since:
        conditions.append(_patients.created_at >= bindparam("created_since"))
    if updated_since:
        conditions.append(_patients.updated_at >= bindparam("updated_since"))
    return _PATIENT_RECORD.select_from(source).where(*conditions).order_by(id_order).limit(bindparam("limit"))


_CONTACT = select(_patients.email, _patients.phone_e164).where(_patients.id == bindparam("patient_id"))


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return bool(diag.constraint_name == constraint)
    return sqlite_column in str(error.orig)


class IdempotencyKeyRepository:
    """The ``idempotency_keys`` table: one row per (principal, key)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, principal: str, key: str) -> StoredIdempotencyKey | None:
        # A fresh SELECT, never the identity map: after losing an insert race the winner's row must be read.
        query = select(StoredIdempotencyKey).where(
            StoredIdempotencyKey.principal == principal, StoredIdempotencyKey.key == key
        )
        return self._session.scalars(query, execution_options={"populate_existing": True}).one_or_none()

    def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Insert a row unless one with its (principal, key) exists; True if this one went in.

        On PostgreSQL a concurrent insert of the same key makes this wait until
        that transaction ends, so the loser then sees the winner's row.
        """
        # The engine has loaded its own dialect already; importing the other would cost cold-start time.
        if self._session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
        statement = (
            dialect.insert(StoredIdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(StoredIdempotencyKey.key)
        )
        # RETURNING yields the row only if it went in (rowcount is not reliable across drivers here).
        return self._session.execute(statement).first() is not None

    def complete(self, principal: str, key: str, *, patient_id: int, result: str) -> None:
        self._session.execute(
            update(StoredIdempotencyKey)
            .where(StoredIdempotencyKey.principal == principal, StoredIdempotencyKey.key == key)
            .values(patient_id=patient_id, result=result),
            execution_options={"synchronize_session": False},
        )

    def delete_expired(self, now: datetime, *, principal: str | None = None, key: str | None = None) -> int:
        """Delete expired rows: all of them, or the one of (principal, key)."""
        statement = delete(StoredIdempotencyKey).where(StoredIdempotencyKey.expires_at <= now)
        if principal is not None and key is not None:
            statement = statement.where(
                StoredIdempotencyKey.principal == principal, StoredIdempotencyKey.key == key
            )
        result = self._session.execute(statement, execution_options={"synchronize_session": False})
        return int(result.rowcount)  # type: ignore[attr-defined]

    def forget(self, principal: str, key: str) -> None:
        self._session.execute(
            delete(StoredIdempotencyKey).where(
                StoredIdempotencyKey.principal == principal, StoredIdempotencyKey.key == key
            ),
            execution_options={"synchronize_session": False},
        )

    def forget_patient(self, patient_id: int) -> None:
        """Drop the replayable copies of a deleted patient's data."""
        self._session.execute(
            delete(StoredIdempotencyKey).where(StoredIdempotencyKey.patient_id == patient_id),
            execution_options={"synchronize_session": False},
        )
