"""Keep the number of patients in a counter row, so list totals stay cheap at scale.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "row_counts",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name="pk_row_counts"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Hold off writers until this transaction commits, so no patient is created or
        # deleted between the count below and the first write that maintains it.
        op.execute("LOCK TABLE patients IN SHARE MODE")
    op.execute("INSERT INTO row_counts (table_name, row_count) SELECT 'patients', count(*) FROM patients")


def downgrade() -> None:
    op.drop_table("row_counts")
