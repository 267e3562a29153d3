"""The development database's schema, brought up to date when a local server starts."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from chalicelib.config.settings import Settings
from local_server.private_data import keep_private


def migrate_development_database(settings: Settings) -> None:
    """In the dev stage on the development SQLite file (no DATABASE_URL): its tables, or the
    migrations it misses, before the first request.

    A fresh checkout served by plain ``chalice local`` would otherwise answer every
    request with a 503. Any other database is migrated by ``make migrate``, never by a server.
    Its directory (``TELEHEALTH_DATA_DIR``) and every file in it are kept owner-only first.
    """
    if settings.stage == "dev" and settings.uses_development_database:
        from chalicelib.storage.migrate import upgrade_database

        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            keep_private(Path(database).parent)

        upgrade_database(settings.database_url)
