"""Every dependency a route may declare, as `Annotated` aliases, in one place:
the app's state, the request's session, the cache, the page of a list, the
manage tokens, the signup budget.

A route takes what it needs by type (`session: SessionDep`); nothing else reads
the app's state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

from eventms.cache.keys import Cache
from eventms.db.effects import discard_after_commit, run_after_commit
from eventms.db.queries import Page
from eventms.errors import InvalidInput
from eventms.http.ratelimit import client_of, spend
from eventms.idempotency.held import held_session
from eventms.selfservice.tokens import ManageTokens
from eventms.state import State

READS = frozenset({"GET", "HEAD"})


def state_of(scope: Scope) -> State:
    """The lifespan's state, as Starlette copies it into every request's scope."""
    return cast(State, scope["state"])


# async: FastAPI runs a plain `def` dependency in a worker thread, per request.
async def _state(request: Request) -> State:
    return state_of(request.scope)


StateDep = Annotated[State, Depends(_state)]


async def _request_session(state: StateDep, request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route returns, rolled back on any
    error; effects registered with `after_commit` run only once it has committed.
    Reads use autocommit sessions (no BEGIN/COMMIT round trips)."""
    held = held_session(request.scope)
    if held is not None:
        # An Idempotency-Key request: its layer owns the transaction and commits it
        # with the stored answer. The route runs in a savepoint, so that a refusal
        # rolls back its write but keeps the key's lock until that answer is stored.
        try:
            async with held.begin_nested():
                yield held
        except BaseException:
            discard_after_commit(held)
            raise
        return
    maker = state["read_sessions"] if request.method in READS else state["sessions"]
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            discard_after_commit(session)
            raise
    await run_after_commit(session)


# scope="function": commit before the response is sent, so a client that got its
# 201 can read its write back at once.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def _cache(state: StateDep) -> Cache:
    return state["cache"]


CacheDep = Annotated[Cache, Depends(_cache)]


async def _page(
    state: StateDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="items per page (default PAGE_SIZE_DEFAULT, 100; at most"
            " PAGE_SIZE_MAX, 1000)",
        ),
    ] = None,
) -> Page:
    settings = state["settings"]
    if limit is not None and limit > settings.page_size_max:
        raise InvalidInput(
            "limit", f"Input should be less than or equal to {settings.page_size_max}"
        )
    size = limit if limit is not None else settings.page_size_default
    return Page(page=page, limit=min(size, settings.page_size_max))


PageDep = Annotated[Page, Depends(_page)]


async def _manage_tokens(state: StateDep) -> ManageTokens:
    return state["manage_tokens"]


ManageTokensDep = Annotated[ManageTokens, Depends(_manage_tokens)]


async def _signup_budget(state: StateDep, request: Request) -> None:
    """SIGNUP_RATE_LIMIT_*: each signup also spends from a budget of its own."""
    limiter = state["signup_limiter"]
    if limiter is not None:
        await spend(limiter, client_of(request.scope, limiter, state["keys"]))


# For a route's `dependencies`, after its access rule.
signup_budget = Depends(_signup_budget)
