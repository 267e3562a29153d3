"""Never hand out a patient id again, also after the patient holding it was deleted.

Without AUTOINCREMENT, SQLite gives a new row the highest id plus one: delete
the newest patient and the next one gets its id, its audit trail, its
notification history and its URL (so a client's cached ETag for it matches).
The table is rebuilt with AUTOINCREMENT, and its counter starts past every id
ever seen, those of patients deleted before this migration included (the audit
trail, the notification history and idempotency records keep them).
PostgreSQL's sequence never goes back; it is only moved past the same ids, in
case rows were ever written with explicit ids.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HIGHEST_ID_SEEN = sa.text(
    "SELECT max(id) FROM ("
    " SELECT max(id) AS id FROM patients"
    " UNION ALL SELECT max(patient_id) FROM audit_events"
    " UNION ALL SELECT max(patient_id) FROM notifications"
    " UNION ALL SELECT max(patient_id) FROM idempotency_keys"
    ") AS ids"
)


def upgrade() -> None:
    bind = op.get_bind()
    highest = bind.execute(HIGHEST_ID_SEEN).scalar() or 0
    if bind.dialect.name == "sqlite":
        _rebuild_patients(autoincrement=True)
        _start_sqlite_counter_after(highest)
    elif bind.dialect.name == "postgresql" and highest > 0:
        # setval(n) makes the next id n + 1; a sequence already past n is left where it is.
        op.execute(
            sa.text(
                "SELECT setval(sequence, greatest(:highest, coalesce(pg_sequence_last_value(sequence), 0)))"
                " FROM (SELECT pg_get_serial_sequence('patients', 'id')::regclass AS sequence) AS s"
            ).bindparams(highest=highest)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_patients(autoincrement=False)


def _rebuild_patients(*, autoincrement: bool) -> None:
    # A copy of the table, rows, constraints and indexes included, then a rename.
    with op.batch_alter_table(
        "patients", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def _start_sqlite_counter_after(highest: int) -> None:
    # The copy's inserts set the counter to the highest id copied; deleted patients' ids lie beyond.
    counter = sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'patients'")
    current = op.get_bind().execute(counter).scalar()
    if current is None:
        op.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('patients', :seq)").bindparams(
                seq=highest
            )
        )
    elif current < highest:
        op.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'patients'").bindparams(seq=highest)
        )
