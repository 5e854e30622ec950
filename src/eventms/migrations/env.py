"""Alembic environment: runs migrations on the configured database (sync psycopg 3).

The database is, in order: the connection `eventms migrate` hands over
(`config.attributes["connection"]`), `alembic -x url=...` (what alembic.ini documents
for developers), or `sqlalchemy.url`. Autogenerate compares only our own tables
(see eventms.migrations.compare).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url

from eventms.migrations.compare import comparison_options
from eventms.models import Base

config = context.config
target_metadata = Base.metadata


def psycopg_url(url: str) -> str:
    """`url` with the psycopg 3 driver when it names none (postgresql://, postgres://)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **comparison_options(connection, target_metadata))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        run_on(connectable)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit(
            "no database: run `alembic -x url=postgresql://... <command>`,"
            " or migrate with `eventms migrate`"
        )
    engine = create_engine(psycopg_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_on(connection)


run_migrations_online()
