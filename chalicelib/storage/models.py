"""Database schema. Alembic migrations in ``chalicelib/storage/migrations`` create and change it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, SmallInteger, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigIntPrimaryKey = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """Timestamps are naive UTC on every database; serialization marks them as UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        # What a search (POST /patients/search) looks up besides the name and email (migration 0011).
        Index("ix_patients_phone_e164", "phone_e164"),
        Index("ix_patients_created_at", "created_at"),
        Index("ix_patients_updated_at", "updated_at"),
        # SQLite would otherwise give a deleted patient's id (the highest) to the next one (migration 0006).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPrimaryKey, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    # Lower-cased email: the unique constraint on it makes uniqueness
    # case-insensitive and race-free on every database.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Naive UTC on every database; serialization marks them as UTC.
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    # The prefixes of the name's words without case or accents, a JSON array
    # (chalicelib.patients.names): written with the name, copied by the database's triggers into
    # patient_name_prefixes in the same statement. NULL only on rows loaded behind the API's back.
    name_prefixes: Mapped[str | None] = mapped_column(Text)


class PatientNamePrefix(Base):
    """One prefix of one word of a patient's name: the index a name search walks.

    Written and removed only by the database's triggers on ``patients`` (migration 0011), from
    ``patients.name_prefixes``, so it changes in the statement that changes the name: no extra
    round trip, and no writer can forget it. The key (prefix, patient_id) lists the patients of a
    prefix in id order, so a search by several words merges those lists and stops at a page.
    """

    __tablename__ = "patient_name_prefixes"
    __table_args__ = {"sqlite_with_rowid": False}

    prefix: Mapped[str] = mapped_column(String(200), primary_key=True)
    patient_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient as read to answer a request: plain values, no session behind them."""

    id: int
    name: str
    email: str
    phone: str | None
    version: int
    created_at: datetime
    updated_at: datetime


# Rows the count of a table is spread over (migration 0009 creates them).
ROW_COUNT_SHARDS = 64


class RowCount(Base):
    """The number of rows of a table, kept in the transaction that inserts or deletes them.

    A list's ``total`` is then the sum of ``ROW_COUNT_SHARDS`` rows read by primary key
    instead of ``count(*)``, which walks the whole table (about a second per million rows).
    Each change adds to one shard picked at random, so concurrent creates and deletes
    rarely wait for one another's commit on a row lock.
    """

    __tablename__ = "row_counts"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    row_count: Mapped[int] = mapped_column(BigInteger)


class StoredIdempotencyKey(Base):
    """A create made under an ``Idempotency-Key`` (``chalicelib.patients.idempotency.IdempotencyKey``,
    as stored): the key, a hash of the body and what was created.

    The primary key (principal, key) decides between concurrent requests with one key.
    ``result`` holds the id of the create's notification (JSON), never patient data: a
    replay reads the patient as it is now. It is written in the create's transaction, so
    it is never seen empty.
    """

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # HMAC-SHA256 of the request body under IDEMPOTENCY_KEY_SECRET (rows older than a day: plain SHA-256).
    request_sha256: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    expires_at: Mapped[datetime] = mapped_column(DateTime(), index=True)


class AuditEvent(Base):
    """Who did what to which patient, when, and how it ended. Never a name, email or phone.

    No foreign key to ``patients``: the trail outlives the records it describes.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_patient_id_id", "patient_id", "id"),
        Index("ix_audit_events_principal_id", "principal", "id"),
        # One refusal row per principal per minute: the upsert counting refusals relies on it. Partial:
        # the other rows (no window) would each cost an insertion into it for nothing (migration 0012).
        Index(
            "ix_audit_events_principal_window_start",
            "principal",
            "window_start",
            unique=True,
            postgresql_where=text("window_start IS NOT NULL"),
            sqlite_where=text("window_start IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPrimaryKey, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
    principal: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    # How many requests the row stands for: 1, or the rate-limited refusals of its window.
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Set on refusal rows only: the UTC minute they count (NULLs never collide in the index).
    window_start: Mapped[datetime | None] = mapped_column(DateTime())


class AuditDisclosure(Base):
    """A patient whose data the answer of an audit event showed (the accounting of disclosures).

    The primary key leads with the patient: ``GET /audit?patient_id=`` walks it newest first.
    No foreign keys: like the trail, it outlives the patients it names.
    """

    __tablename__ = "audit_disclosures"
    # SQLite: the rows are the primary key's B-tree itself, not a rowid table beside it (migration 0010).
    __table_args__ = {"sqlite_with_rowid": False}

    patient_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


@dataclass(frozen=True, slots=True)
class AuditEventRecord:
    """An audit event as read to answer a request."""

    id: int
    occurred_at: datetime
    principal: str
    action: str
    patient_id: int | None
    status: int | None
    request_id: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DisclosedRows:
    """What a read that records itself read (``chalicelib.audit.queries.read_disclosing``): the
    status its audit row recorded, the rows, and the other values computed with them."""

    status: int
    rows: list[tuple[Any, ...]]  # the selected columns, in the select's order: the shown ones first
    patient_ids: list[int]  # each row's ``id``
    values: dict[str, Any]  # the other columns asked for, by label


class NotificationStatus:
    PENDING = "pending"  # the hand-off to the broker failed: the relay will hand it off again
    QUEUED = "queued"  # written with the patient change and handed to the broker after commit
    SENDING = "sending"  # claimed by a worker, which is delivering it now
    RETRYING = "retrying"  # an attempt failed; the broker holds the next one
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry: the dead letters
    CANCELLED = "cancelled"  # the patient was deleted first

    CLAIMABLE = (PENDING, QUEUED, RETRYING)
    FINISHED = (DELIVERED, FAILED, CANCELLED)
    ALL = (PENDING, QUEUED, SENDING, RETRYING, DELIVERED, FAILED, CANCELLED)


class Notification(Base):
    """The outbox: one row per patient change to announce, written in the change's transaction."""

    __tablename__ = "notifications"

    # Also the Celery task id, so the broker message carries nothing else.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # No foreign key: the history outlives the patient.
    patient_id: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(32))
    channels: Mapped[str] = mapped_column(String(64))  # comma-separated, e.g. "email,sms"
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Channels already delivered by an attempt that failed on a later one, so retries skip them.
    delivered_channels: Mapped[str] = mapped_column(String(64), default="")
    # Error class and our own short text, never a provider's message (it can quote an address).
    last_error: Mapped[str | None] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime())
    # When the relay hands it to the broker again if nothing else happened; NULL once finished.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(), index=True)


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """A notification as read to answer a request or a check: plain values, no session behind them."""

    id: str
    patient_id: int
    event: str
    channels: str
    status: str
    attempts: int
    last_error: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    delivered_channels: str
    next_attempt_at: datetime | None

    @property
    def channel_list(self) -> list[str]:
        return [c for c in self.channels.split(",") if c]
