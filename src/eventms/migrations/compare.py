"""What Alembic's autogenerate compares: our tables, as the migrations left them.

Used by `env.py` (so `alembic revision --autogenerate` and `alembic check` see the
same thing) and by the test that keeps the models and the migrations in step.

- Only the tables our metadata declares are reflected. procrastinate keeps its job
  queue in `procrastinate_*` tables of the same database (migration 0002 applies its
  schema); autogenerate must never propose dropping them, nor anything else it finds
  there that is not ours.
- An index whose model declaration carries `info={"requires_extension": name}` is
  expected only where that extension is installed. Migration 0001 creates the
  trigram indexes only where pg_trgm exists (any packaged PostgreSQL; the embedded
  pgserver build lacks it). Declaring them on the model keeps them compared, column
  and operator class included, wherever they exist; leaving them out of the
  comparison elsewhere keeps autogenerate from proposing an index the server cannot
  build. A filter on the installed extension, rather than skipping the indexes by
  name everywhere, still catches a trigram index missing where pg_trgm is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

REQUIRES_EXTENSION = "requires_extension"


def installed_extensions(connection: Connection) -> frozenset[str]:
    rows = connection.execute(text("SELECT extname FROM pg_extension"))
    return frozenset(row[0] for row in rows)


def comparison_options(connection: Connection, metadata: MetaData) -> dict[str, Any]:
    """Keyword arguments for `context.configure` / `MigrationContext.configure`."""
    # Asked on first use, i.e. during a comparison: a query here, before Alembic
    # begins its transaction, would leave one open that Alembic then never commits.
    extensions: list[frozenset[str]] = []

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table":
            return name in metadata.tables
        return True

    def include_object(
        item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "index" and not reflected:
            needed = item.info.get(REQUIRES_EXTENSION)
            if needed is None:
                return True
            if not extensions:
                extensions.append(installed_extensions(connection))
            return needed in extensions[0]
        return True

    hooks: dict[str, Callable[..., bool]] = {
        "include_name": include_name,
        "include_object": include_object,
    }
    return {"target_metadata": metadata, **hooks}


def schema_differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """What autogenerate would change to make the database match `metadata` (empty
    when they agree), compared as `env.py` compares."""
    context = MigrationContext.configure(connection, opts=comparison_options(connection, metadata))
    return list(compare_metadata(context, metadata))
