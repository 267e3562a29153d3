"""Idempotency key rows keep ids only: drop the copies of patient data rows written before.

A replay now answers the patient as it is now, so the copy of the patient as first
created (name, email, phone) that each row kept is no longer read. It is removed
here rather than left to expire within 24 hours. Rows keep the notification id.

Revision ID: 0007
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEYS = sa.table(
    "idempotency_keys",
    sa.column("principal", sa.String()),
    sa.column("key", sa.String()),
    sa.column("result", sa.Text()),
)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(KEYS.c.principal, KEYS.c.key, KEYS.c.result).where(KEYS.c.result.is_not(None))
    )
    for principal, key, result in list(rows):
        ids_only = {"notification_id": json.loads(result).get("notification_id")}
        bind.execute(
            sa.update(KEYS)
            .where(KEYS.c.principal == principal, KEYS.c.key == key)
            .values(result=json.dumps(ids_only, separators=(",", ":")))
        )


def downgrade() -> None:
    # The copies are gone; a replay under the old code would fail on these rows, so drop them.
    op.execute(sa.delete(KEYS))
