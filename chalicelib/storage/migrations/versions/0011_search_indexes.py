"""Search indexes: the prefixes of each name's words, and indexes on phone, created_at, updated_at.

``patients.name_prefixes`` holds, as a JSON array, every prefix of every word of the name without
case or accents (``chalicelib.patients.names``, computed in Python: SQLite has no unaccent, and
PostgreSQL's is not IMMUTABLE). Triggers copy it into ``patient_name_prefixes`` (prefix,
patient_id) in the statement that writes the patient, and remove it with the patient, so creates
and updates make no extra round trip and every writer keeps the index true. Existing patients are
backfilled here, in batches, through the same triggers, with the normalization frozen below as it
was written (a test holds it equal to the application's, and a later change to the rule needs a
migration that computes the prefixes again). Email needs no new index: the unique
``email_key`` already is one.

Revision ID: 0011
Revises: 0010
"""

import json
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 5000

_POSTGRESQL_TRIGGERS = (
    """
    CREATE FUNCTION patient_name_prefixes_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.name_prefixes IS NOT NULL THEN
            DELETE FROM patient_name_prefixes
            WHERE patient_id = OLD.id
              AND prefix IN (SELECT json_array_elements_text(OLD.name_prefixes::json));
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.name_prefixes IS NOT NULL THEN
            INSERT INTO patient_name_prefixes (prefix, patient_id)
            SELECT json_array_elements_text(NEW.name_prefixes::json), NEW.id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION patient_name_prefixes_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE patient_name_prefixes;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER patient_name_prefixes_on_insert AFTER INSERT ON patients"
    " FOR EACH ROW EXECUTE FUNCTION patient_name_prefixes_sync()",
    "CREATE TRIGGER patient_name_prefixes_on_update AFTER UPDATE OF name_prefixes ON patients"
    " FOR EACH ROW WHEN (OLD.name_prefixes IS DISTINCT FROM NEW.name_prefixes)"
    " EXECUTE FUNCTION patient_name_prefixes_sync()",
    "CREATE TRIGGER patient_name_prefixes_on_delete AFTER DELETE ON patients"
    " FOR EACH ROW EXECUTE FUNCTION patient_name_prefixes_sync()",
    # TRUNCATE patients (tests, benches, an operator) fires no row trigger.
    "CREATE TRIGGER patient_name_prefixes_on_truncate AFTER TRUNCATE ON patients"
    " FOR EACH STATEMENT EXECUTE FUNCTION patient_name_prefixes_truncate()",
)
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER patient_name_prefixes_on_insert AFTER INSERT ON patients
    WHEN NEW.name_prefixes IS NOT NULL
    BEGIN
        INSERT INTO patient_name_prefixes (prefix, patient_id)
        SELECT value, NEW.id FROM json_each(NEW.name_prefixes);
    END
    """,
    """
    CREATE TRIGGER patient_name_prefixes_on_update AFTER UPDATE OF name_prefixes ON patients
    WHEN OLD.name_prefixes IS NOT NEW.name_prefixes
    BEGIN
        DELETE FROM patient_name_prefixes
        WHERE patient_id = OLD.id AND prefix IN (SELECT value FROM json_each(OLD.name_prefixes));
        INSERT INTO patient_name_prefixes (prefix, patient_id)
        SELECT value, NEW.id FROM json_each(NEW.name_prefixes);
    END
    """,
    """
    CREATE TRIGGER patient_name_prefixes_on_delete AFTER DELETE ON patients
    BEGIN
        DELETE FROM patient_name_prefixes
        WHERE patient_id = OLD.id AND prefix IN (SELECT value FROM json_each(OLD.name_prefixes));
    END
    """,
)
_TRIGGERS = (
    "patient_name_prefixes_on_insert",
    "patient_name_prefixes_on_update",
    "patient_name_prefixes_on_delete",
    "patient_name_prefixes_on_truncate",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("patients", sa.Column("name_prefixes", sa.Text(), nullable=True))
    op.create_table(
        "patient_name_prefixes",
        sa.Column("prefix", sa.String(200), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "patient_id", name="pk_patient_name_prefixes"),
        sqlite_with_rowid=False,
    )
    for statement in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(statement)
    _backfill()
    op.create_index("ix_patients_phone_e164", "patients", ["phone_e164"])
    op.create_index("ix_patients_created_at", "patients", ["created_at"])
    op.create_index("ix_patients_updated_at", "patients", ["updated_at"])


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_patients_updated_at", "patients")
    op.drop_index("ix_patients_created_at", "patients")
    op.drop_index("ix_patients_phone_e164", "patients")
    for trigger in _TRIGGERS if postgresql else _TRIGGERS[:3]:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON patients" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION patient_name_prefixes_sync()")
        op.execute("DROP FUNCTION patient_name_prefixes_truncate()")
    op.drop_table("patient_name_prefixes")
    # SQLite (3.35+) drops a column in place: no table rebuild, AUTOINCREMENT kept.
    op.drop_column("patients", "name_prefixes")


def _backfill() -> None:
    """Each existing name's prefixes, in id order and batches; the triggers fill the index table."""
    connection = op.get_bind()
    select_batch = sa.text("SELECT id, name FROM patients WHERE id > :after ORDER BY id LIMIT :limit")
    update = sa.text("UPDATE patients SET name_prefixes = :prefixes WHERE id = :id")
    after = 0
    while rows := connection.execute(select_batch, {"after": after, "limit": BACKFILL_BATCH}).all():
        connection.execute(update, [{"id": row.id, "prefixes": name_prefixes_json(row.name)} for row in rows])
        after = rows[-1].id


_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
_WORD = re.compile(r"[^\W_]+")


def name_prefixes_json(name: str) -> str:
    """``chalicelib.patients.names.name_prefixes_json`` as of this revision."""
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    text = unicodedata.normalize("NFKD", text.casefold())
    words = _WORD.findall(_APOSTROPHES.sub("", "".join(c for c in text if not unicodedata.combining(c))))
    prefixes = sorted({word[:end] for word in words for end in range(1, len(word) + 1)})
    return json.dumps(prefixes, ensure_ascii=False, separators=(",", ":"))
