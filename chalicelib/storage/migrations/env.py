"""Alembic environment: run by ``chalicelib.storage.migrate.upgrade_database``."""

from alembic import context
from sqlalchemy import Connection, create_engine

from chalicelib.storage.models import Base

url = context.config.get_main_option("sqlalchemy.url") or ""
connectable = context.config.attributes.get("connection")


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connectable is not None:
    run(connectable)
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
