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
import re
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
from starlette.types import ASGIApp, Receive, Scope, Send

from eventms.cache_engine import Render, Rendered, TaggedCache
from eventms.config import Settings
from eventms.db import after_commit
from eventms.observability.middleware import ROUTE_TEMPLATE

__all__ = ["Cache", "CacheDep", "CachedReadsMiddleware", "Rendered", "connect_redis"]

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


def _one_key(kind: str, entity_id: uuid.UUID) -> str:
    return f"{PREFIX}v:{kind}:{entity_id}"


class Cache:
    """The cached views of the API, by name."""

    def __init__(self, redis: Redis | None, ttl: int) -> None:
        self.engine = TaggedCache(redis, ttl, clock_key=CLOCK, everything_tag=EVERYTHING)

    async def event(self, event_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            _one_key("event", event_id), [EVERYTHING, event_tag(event_id)], render, "event"
        )

    async def attendee(self, attendee_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            _one_key("attendee", attendee_id),
            [EVERYTHING, attendee_tag(attendee_id)],
            render,
            "attendee",
        )

    async def registration(self, registration_id: uuid.UUID, render: Render) -> bytes:
        return await self.engine.get(
            _one_key("registration", registration_id),
            [EVERYTHING, registration_tag(registration_id)],
            render,
            "registration",
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
        return await self.engine.get(key, [EVERYTHING, EVENTS], render, "events")

    async def attendees_page(
        self, page: int, limit: int, render: Render, name: str | None, email: str | None
    ) -> bytes:
        # Hashed: the filters are free text and must not shape the key.
        search = hashlib.sha1(orjson.dumps([name, email])).hexdigest()
        key = f"{PREFIX}v:attendees:{page}:{limit}:{search}"
        return await self.engine.get(key, [EVERYTHING, ATTENDEES], render, "attendees")

    async def registrations_page(self, page: int, limit: int, render: Render) -> bytes:
        key = f"{PREFIX}v:registrations:{page}:{limit}"
        return await self.engine.get(key, [EVERYTHING, REGISTRATIONS], render, "registrations")

    async def close(self) -> None:
        await self.engine.close()


# `GET /api/v1/<kind>/<uuid>`: the by-id views, for the fast path below.
_BY_ID = re.compile(r"/api/v1/(event|attendee|registration)/([0-9A-Fa-f-]{32,36})")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class CachedReadsMiddleware:
    """Answers a by-id GET whose body is cached straight from Redis, before FastAPI
    routes it: a hit costs one Redis call and the bytes, not routing, dependency
    injection and a session. A miss (or a cache that may not be read now) goes on
    to the route, which loads, fills and guards against races as usual; the outer
    middleware (request ids, metrics, CORS, rate limits) applies to both.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _BY_ID.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is not None and scope["method"] == "GET":
            kind = match[1]
            body = await self._cached(scope, kind, match[2])
            if body is not None:
                scope[ROUTE_TEMPLATE] = f"/api/v1/{kind}/{{{kind}_id}}"
                headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _cached(scope: Scope, kind: str, raw_id: str) -> bytes | None:
        try:
            entity_id = uuid.UUID(raw_id)
        except ValueError:
            return None
        cache: Cache = scope["app"].state.cache
        # On a miss the route looks again (and counts the miss) before it loads.
        found = await cache.engine.peek(_one_key(kind, entity_id), kind, final=False)
        return found if isinstance(found, bytes) else None


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
