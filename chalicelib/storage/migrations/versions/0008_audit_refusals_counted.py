"""Rate-limited refusals are counted, not written row by row: one row per principal per minute.

``count`` is how many requests a row stands for (1, except on a refusal row);
``window_start`` is set on refusal rows only (the UTC minute they count), and
the unique index on (principal, window_start) is what the upsert adding one
to the count relies on. NULLs never collide, so every other row is untouched.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as table:
        table.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        table.add_column(sa.Column("window_start", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_audit_events_principal_window_start",
        "audit_events",
        ["principal", "window_start"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_principal_window_start", table_name="audit_events")
    with op.batch_alter_table("audit_events") as table:
        table.drop_column("window_start")
        table.drop_column("count")
