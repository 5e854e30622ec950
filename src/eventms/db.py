"""Engine, the per-request session, and the declarative Base.

One session per request: the `session` dependency opens it, commits it when the
route returns, rolls it back on any error, and only then runs the callbacks that
services registered with `after_commit` (cache drops, Socket.IO emits), so that
nobody outside sees an effect of a write that did not commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from eventms.config import Settings

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    """`created_at` / `updated_at`, set by PostgreSQL's clock."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def constraint_name(error: IntegrityError) -> str | None:
    """The name of the constraint a statement violated, as PostgreSQL reports it."""
    return getattr(getattr(error.orig, "diag", None), "constraint_name", None)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def create_engine(url: URL | str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
    )


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info` is copied into every session's `.info` (e.g. the cache its writes drop)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed (never on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop("after_commit", []):
        try:
            await callback()
        except Exception:  # an effect failing must not turn a committed write into an error
            log.exception("after-commit callback failed")


def create_read_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for GET requests: autocommit, so a read is its statements' round
    trips only, without BEGIN and COMMIT. Each statement sees its own snapshot, which
    a read of one row (one joined query) does not notice; a list's total may differ
    by a concurrent write from its page. Writes never use these sessions."""
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), info)


READS = frozenset({"GET", "HEAD"})


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    state = request.app.state
    maker: async_sessionmaker[AsyncSession] = (
        state.read_sessionmaker if request.method in READS else state.sessionmaker
    )
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop("after_commit", None)
            raise
    await run_after_commit(session)


# scope="function": commit before the response is sent, so a client that got its
# 201 can read its write back at once.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
