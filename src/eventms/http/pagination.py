"""`?page=&limit=` on every list; the envelope gains `meta: {page, limit, total}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from eventms.http.envelope import PageMeta


@dataclass(frozen=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> PageMeta:
        return PageMeta(page=self.page, limit=self.limit, total=total)


# async: FastAPI runs a plain `def` dependency in a worker thread, per request.
async def _page(
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="items per page (default 100, max 1000)")
    ] = None,
) -> Page:
    settings = request.app.state.settings
    size = limit if limit is not None else settings.page_size_default
    return Page(page=page, limit=min(size, settings.page_size_max))


PageDep = Annotated[Page, Depends(_page)]
