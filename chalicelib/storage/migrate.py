"""Create or upgrade the database schema with the Alembic migrations in this package.

``python -m chalicelib.storage.migrate`` upgrades the database named by DATABASE_URL
(or the development SQLite file). Alembic loads only here, never on a request.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from chalicelib.config.settings import normalize_database_url
from chalicelib.storage.database import build_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    # Alembic logs one INFO line per plugin it sets up, which says nothing about this database.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command

    url = normalize_database_url(url)
    engine = build_engine(url)  # same connection settings as the API (WAL, busy timeout)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


if __name__ == "__main__":
    from chalicelib import bootstrap  # a command, and so an edge: it reads the environment

    upgrade_database(sys.argv[1] if len(sys.argv) > 1 else bootstrap.settings().database_url)
    print("database schema is up to date", file=sys.stderr)
