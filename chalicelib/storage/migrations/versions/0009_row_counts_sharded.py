"""The patient counter spread over 64 rows, summed on read: concurrent creates no longer queue on one row.

Each create or delete adds its ±1 to one of the rows, picked at random, so
concurrent transactions rarely wait on each other's row lock until commit;
``total`` is the sum of the rows, as exact as before. The table is rebuilt
with ``(table_name, shard)`` as its key, counted afresh from ``count(*)``.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen here: the application's ROW_COUNT_SHARDS may only grow by a migration adding rows.
SHARDS = 64


def upgrade() -> None:
    _hold_off_writers()
    op.drop_table("row_counts")
    op.create_table(
        "row_counts",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "shard", name="pk_row_counts"),
    )
    op.execute(
        "INSERT INTO row_counts (table_name, shard, row_count) SELECT 'patients', 0, count(*) FROM patients"
    )
    others = ", ".join(f"('patients', {shard}, 0)" for shard in range(1, SHARDS))
    op.execute(f"INSERT INTO row_counts (table_name, shard, row_count) VALUES {others}")  # noqa: S608


def downgrade() -> None:
    _hold_off_writers()
    op.drop_table("row_counts")
    op.create_table(
        "row_counts",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name="pk_row_counts"),
    )
    op.execute("INSERT INTO row_counts (table_name, row_count) SELECT 'patients', count(*) FROM patients")


def _hold_off_writers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # No patient is created or deleted between the count and the first write that maintains it.
        op.execute("LOCK TABLE patients IN SHARE MODE")
