"""Whether the database carries the schema this code expects.

Never a query on a request's path: a statement that fails is classified
(``is_missing_schema``), and only the health check reads the applied revision.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from chalicelib.storage.database import TransactionMode, begin, release

# The newest migration's revision (chalicelib/storage/migrations/versions; a test holds it to
# Alembic's head). Alembic itself is not in the Lambda artifact. Revisions are 4-digit and ordered.
NEWEST_REVISION = "0012"
# PostgreSQL's undefined_table and undefined_column.
MISSING_SCHEMA_SQLSTATES = frozenset({"42P01", "42703"})
# SQLite's words for the same: no table, no column read, no column written.
MISSING_SCHEMA_SQLITE = ("no such table", "no such column", "has no column named")


def is_missing_schema(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is a statement naming a table or column the database lacks."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DBAPIError) and _names_missing_schema(seen.orig):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _names_missing_schema(driver_error: BaseException | None) -> bool:
    if getattr(driver_error, "sqlstate", None) in MISSING_SCHEMA_SQLSTATES:  # psycopg
        return True
    if type(driver_error).__module__ == "sqlite3":
        return any(words in str(driver_error) for words in MISSING_SCHEMA_SQLITE)
    return False


def schema_is_behind() -> bool:
    """True when the database has no migration applied, or only older ones than ``NEWEST_REVISION``.

    One query, for the health check. A newer revision than this code knows (migrated ahead of a
    deployment) is not behind. Raises what the database raises (a missing ``alembic_version``
    table: see ``is_missing_schema``).
    """
    connection = begin(TransactionMode.ONE_STATEMENT)  # no BEGIN or ROLLBACK round trip around it
    try:
        revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        release(connection)
    return all(revision < NEWEST_REVISION for revision in revisions)
