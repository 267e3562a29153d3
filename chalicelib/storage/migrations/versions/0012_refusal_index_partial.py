"""The refusal rows' unique index covers refusal rows only.

``(principal, window_start)`` is unique so that the minute's refusals share one row; every other
row has no ``window_start``, yet each was written into that index too: one B-tree insertion per
audited request for nothing. Partial (``WHERE window_start IS NOT NULL``), it holds refusal rows
alone, and the upserts name the same condition.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEX = "ix_audit_events_principal_window_start"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="audit_events")
    op.create_index(
        INDEX,
        "audit_events",
        ["principal", "window_start"],
        unique=True,
        postgresql_where=sa.text("window_start IS NOT NULL"),
        sqlite_where=sa.text("window_start IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="audit_events")
    op.create_index(INDEX, "audit_events", ["principal", "window_start"], unique=True)
