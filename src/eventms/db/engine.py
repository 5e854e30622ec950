"""The async engine and the two session factories: writes, and autocommit reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from eventms.config import Settings


def create_engine(url: URL | str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        # Times leave PostgreSQL in UTC whatever the server's TimeZone, so that the
        # JSON it renders (db/json.py) and the ORM's agree on every byte.
        connect_args={"options": "-c timezone=UTC"},
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
    )


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info` is copied into every session's `.info` (e.g. the cache its writes drop)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


def create_read_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for GET requests: autocommit, so a read is its statements' round
    trips only, without BEGIN and COMMIT. Each statement sees its own snapshot, which
    a read of one row (one joined query) does not notice; a list's total may differ
    by a concurrent write from its page. Writes never use these sessions."""
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), info)
