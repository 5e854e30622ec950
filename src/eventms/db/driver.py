"""The psycopg connection under a session's transaction.

For what SQLAlchemy cannot do on it: procrastinate deferring a job in that very
transaction, and statements sent together in one round trip (psycopg's pipeline
mode) on a hot path. Statements run there are part of the session's transaction:
its commit commits them, its rollback undoes them.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> AsyncConnection[Any]:
    raw = await (await session.connection()).get_raw_connection()
    connection = raw.driver_connection
    assert isinstance(connection, AsyncConnection)
    return connection
