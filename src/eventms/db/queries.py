"""The query helpers every feature uses, so that each gets the same behaviour:
`get_one_or_404` (load an entity by id, or raise the contract's NotFound),
`paginate` (a page of any select, with the total from the same scan) and
`contains` (the ILIKE pattern of a substring search)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption

from eventms.errors import NotFound


class HasId(Protocol):
    id: Any


M = TypeVar("M", bound=HasId)


async def get_one_or_404(
    session: AsyncSession,
    model: type[M],
    entity_id: uuid.UUID,
    *,
    options: Sequence[ExecutableOption] = (),
    resource: str | None = None,
) -> M:
    """The `model` row with this id (with `options` loaded, refreshed if already in the
    session), or NotFound `<resource> with ID … not found` (resource: the class name)."""
    key: InstrumentedAttribute[Any] = model.id
    rows = await session.scalars(
        select(model)
        .where(key == entity_id)
        .options(*options)
        .execution_options(populate_existing=True)
    )
    found = rows.unique().one_or_none()
    if found is None:
        raise NotFound.by_id(resource or model.__name__, entity_id)
    return found


@dataclass(frozen=True)
class Page:
    """`?page=&limit=`: which slice of a list to answer."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


T = TypeVar("T")


async def paginate(session: AsyncSession, statement: Select[T], page: Page) -> tuple[list[T], int]:
    """One page of `statement` (which carries its own ORDER BY) and the number of rows
    it selects in all.

    The total comes from the same scan (`count(*) OVER ()`): for a search the scan is
    the costly part, and a separate count would run it twice. Past the last page the
    window has no row to tell the total, and a count is asked for instead.
    """
    counted = (
        statement.add_columns(func.count().over().label("total"))
        .offset(page.offset)
        .limit(page.limit)
    )
    rows = (await session.execute(counted)).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][-1])
    if page.offset == 0:
        return [], 0
    everything = statement.order_by(None).subquery()
    total = await session.scalar(select(func.count()).select_from(everything))
    return [], total or 0


def contains(text: str) -> str:
    """An ILIKE pattern matching `text` literally anywhere: its own `%`, `_` and `\\`
    are plain characters (backslash, PostgreSQL's default ESCAPE, escapes them)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
