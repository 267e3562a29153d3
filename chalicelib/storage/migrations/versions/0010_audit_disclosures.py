"""The accounting of disclosures: which patients each audited answer showed.

One row per (patient, audit event) whose answer carried that patient's data: each patient of
a list page or a search page (a read by id names its patient on its own row). Its primary
key, (patient_id, event_id), is also the index ``GET /audit?patient_id=`` walks newest first. No foreign
keys: like the trail, the accounting outlives the records it names.

Nothing is carried over: an older row that names its patient (``audit_events.patient_id``)
is found by that column, which ``GET /audit?patient_id=`` reads together with this
table; the patients of list pages answered before this revision were never recorded.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_disclosures",
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "event_id", name="pk_audit_disclosures"),
        # SQLite: one B-tree (the primary key's), not a rowid table and an index beside it: each
        # disclosure is written once, which halves what a list page of 100 adds to its commit.
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("audit_disclosures")
