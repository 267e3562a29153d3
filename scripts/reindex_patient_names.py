"""Recompute each patient's name prefixes where they differ from the rule of ``chalicelib.patients.names``.

Needed when names were written by code that did not maintain them: the code before migration 0011,
still serving between the migration and the release (its creates leave ``name_prefixes`` NULL, its
renames leave the old name's prefixes), a bulk load, or a change to the normalization. The database's
triggers update ``patient_name_prefixes`` with each corrected row. One short transaction per batch,
so it can run beside the API; run it again until it reports 0.

    DATABASE_URL=... python -m scripts.reindex_patient_names
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, select, update

from chalicelib.patients.names import name_prefixes_json
from chalicelib.storage.models import Patient

BATCH = 5000
_patients = Patient.__table__.c  # type: ignore[attr-defined]
_BATCH = (
    select(_patients.id, _patients.name, _patients.name_prefixes)
    .where(_patients.id > bindparam("after"))
    .order_by(_patients.id)
    .limit(BATCH)
)
# Only if the name is still the one the prefixes were computed from: a rename meanwhile wins.
_CORRECT = (
    update(Patient.__table__)
    .where(_patients.id == bindparam("patient_id"), _patients.name == bindparam("computed_from"))
    .values(name_prefixes=bindparam("prefixes"))
)


def reindex_patient_names(engine: Engine) -> int:
    """Correct every stale ``name_prefixes``; return how many rows were corrected."""
    corrected, after = 0, 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(_BATCH, {"after": after}).all()
            if not rows:
                return corrected
            stale = [
                {"patient_id": row.id, "computed_from": row.name, "prefixes": prefixes}
                for row in rows
                if (prefixes := name_prefixes_json(row.name)) != row.name_prefixes
            ]
            if stale:
                connection.execute(_CORRECT, stale)
            corrected += len(stale)
            after = rows[-1].id


def main() -> None:
    from chalicelib.storage.database import get_engine

    print(f"corrected the name prefixes of {reindex_patient_names(get_engine()):,} patients")


if __name__ == "__main__":
    main()
