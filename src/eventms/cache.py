"""The cache key scheme, and what each write makes stale. The only module that knows
cache keys; the mechanics (versions, races, outages) are in `cache_engine`.

Cached: the full response body of event by id, attendee by id, registration by id,
and list pages. Each view depends on the tags of the entities it shows:

- event `E`: `e:E` (its registrations and attendees are covered by the writes below);
- attendee `A`: `a:A` and `e:X` for each event X they are registered for (the seat
  counts of X change when others register);
- registration `R` of `E` by `A`: `r:R`, `e:E`, `a:A`;
- list pages: their family tag (`events`, `attendees`, `registrations`), bumped by
  every write that can change any page of the family.

A write bumps the tags of what it changed, after its transaction commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Annotated

import orjson
from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.cache_engine import Render, Rendered, TaggedCache
from eventms.config import Settings
from eventms.db import after_commit

__all__ = ["Cache", "CacheDep", "Rendered", "connect_redis"]

PREFIX = "ems:"
CLOCK = PREFIX + "clock"
EVERYTHING = PREFIX + "t:all"
EVENTS = PREFIX + "t:events"
ATTENDEES = PREFIX + "t:attendees"
REGISTRATIONS = PREFIX + "t:registrations"


def event_tag(event_id: uuid.UUID) -> str:
    return f"{PREFIX}t:e:{event_id}"


def attendee_tag(attendee_id: uuid.UUID) -> str:
    return f"{PREFIX}t:a:{attendee_id}"


def registration_tag(registration_id: uuid.UUID) -> str:
    return f"{PREFIX}t:r:{registration_id}"


def connect_redis(settings: Settings) -> Redis | None:
    """One client (and connection pool) per process, or None without Redis.

    Short timeouts and no retries: when Redis is slow the request goes to PostgreSQL
    instead of waiting for it.
    """
    url = settings.redis_location()
    if url is None:
        return None
    return Redis.from_url(
        url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        max_connections=256,
    )


class Cache:
    """The cached views of the API, by name."""

    def __init__(self, redis: Redis | None, ttl: int) -> None:
        self.engine = TaggedCache(redis, ttl, clock_key=CLOCK, everything_tag=EVERYTHING)

    async def event(self, event_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            f"{PREFIX}v:event:{event_id}", [EVERYTHING, event_tag(event_id)], render
        )

    async def attendee(self, attendee_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            f"{PREFIX}v:attendee:{attendee_id}", [EVERYTHING, attendee_tag(attendee_id)], render
        )

    async def registration(self, registration_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            f"{PREFIX}v:registration:{registration_id}",
            [EVERYTHING, registration_tag(registration_id)],
            render,
        )

    async def events_page(
        self,
        page: int,
        limit: int,
        render: Render,
        date_from: date | None = None,
        date_to: date | None = None,
    ) -> bytes:
        key = f"{PREFIX}v:events:{page}:{limit}:{date_from or ''}:{date_to or ''}"
        return await self.engine.get(key, [EVERYTHING, EVENTS], render)

    async def attendees_page(
        self, page: int, limit: int, render: Render, name: str | None, email: str | None
    ) -> bytes:
        # Hashed: the filters are free text and must not shape the key.
        search = hashlib.sha1(orjson.dumps([name, email])).hexdigest()
        key = f"{PREFIX}v:attendees:{page}:{limit}:{search}"
        return await self.engine.get(key, [EVERYTHING, ATTENDEES], render)

    async def registrations_page(self, page: int, limit: int, render: Render) -> bytes:
        key = f"{PREFIX}v:registrations:{page}:{limit}"
        return await self.engine.get(key, [EVERYTHING, REGISTRATIONS], render)

    async def close(self) -> None:
        await self.engine.close()


async def _cache(request: Request) -> Cache:
    # async: FastAPI runs a plain `def` dependency in a worker thread, per request.
    return request.app.state.cache  # type: ignore[no-any-return]


CacheDep = Annotated[Cache, Depends(_cache)]


# What the body of each view shows, for the tags it depends on beyond its own.


def shows_events(event_ids: Iterable[uuid.UUID]) -> list[str]:
    return [event_tag(event_id) for event_id in event_ids]


def shows_registration(event_id: uuid.UUID, attendee_id: uuid.UUID) -> list[str]:
    return [event_tag(event_id), attendee_tag(attendee_id)]


# Writes: services call these; the tags are bumped once the transaction commits.


def _stale_after_commit(session: AsyncSession, tags: list[str]) -> None:
    cache: Cache | None = session.info.get("cache")
    if cache is None or cache.engine.redis is None:
        return

    async def bump() -> None:
        await cache.engine.bump(tags)

    after_commit(session, bump)


def event_created(session: AsyncSession) -> None:
    _stale_after_commit(session, [EVENTS])


def event_changed(session: AsyncSession, event_id: uuid.UUID) -> None:
    """An event was updated or deleted (its registrations with it)."""
    _stale_after_commit(session, [event_tag(event_id), EVENTS, REGISTRATIONS])


def attendee_created(session: AsyncSession) -> None:
    _stale_after_commit(session, [ATTENDEES])


def attendee_changed(
    session: AsyncSession, attendee_id: uuid.UUID, event_ids: Iterable[uuid.UUID]
) -> None:
    """An attendee was updated or deleted; the events in `event_ids` show them."""
    tags = [attendee_tag(attendee_id), *shows_events(event_ids)]
    _stale_after_commit(session, [*tags, ATTENDEES, EVENTS, REGISTRATIONS])


def registration_changed(
    session: AsyncSession,
    registration_id: uuid.UUID,
    event_id: uuid.UUID,
    attendee_id: uuid.UUID,
) -> None:
    """A registration was made or canceled: its event's seats and lists change."""
    tags = [registration_tag(registration_id), event_tag(event_id), attendee_tag(attendee_id)]
    _stale_after_commit(session, [*tags, EVENTS, REGISTRATIONS])


async def invalidate_everything(settings: Settings) -> None:
    """After writes that bypassed the API (`eventms seed`): nothing cached survives."""
    redis = connect_redis(settings)
    if redis is None:
        return
    try:
        await Cache(redis, settings.ttl).engine.bump_everything()
    finally:
        await redis.aclose()
