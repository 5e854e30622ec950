"""The cache key scheme: the cached views by name, and the tags each depends on.
The only module that knows cache keys.

Cached: the full response body of event by id, attendee by id, registration by id,
and list pages. Each view depends on the tags of the entities it shows:

- event `E`: `e:E` (its registrations and attendees are covered by the writes in
  `invalidation`);
- attendee `A`: `a:A` and `e:X` for each event X they are registered for (the seat
  counts of X change when others register);
- registration `R` of `E` by `A`: `r:R`, `e:E`, `a:A`;
- list pages: their family tag (`events`, `attendees`, `registrations`), bumped by
  every write that can change any page of the family;
- the calendar feed (`/events.ics`, of one UTC day): the `events` family tag.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from datetime import date

import orjson

from eventms.cache.engine import Render, TaggedCache
from eventms.cache.multiplex import ScriptHost

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


# The views read by id, by kind, with the tag of the entity they show. A route that
# serves one is marked with `fast_path.by_id(kind)`.
BY_ID: dict[str, Callable[[uuid.UUID], str]] = {
    "event": event_tag,
    "attendee": attendee_tag,
    "registration": registration_tag,
}


# A view is what a caller may see of an entity: `full`, or `public` (without any
# attendee data, PRODUCT.md). It is part of every key, so that a body cached for one
# view is never served to a caller of another.
FULL = "full"


def by_id_key(kind: str, entity_id: uuid.UUID | str, view: str) -> str:
    """`entity_id`: a UUID, or its canonical text (`str(uuid)`)."""
    return f"{PREFIX}v:{kind}:{view}:{entity_id}"


class Cache:
    """The cached views of the API, by name."""

    def __init__(self, redis: ScriptHost | None, ttl: int) -> None:
        self.engine = TaggedCache(redis, ttl, clock_key=CLOCK, everything_tag=EVERYTHING)

    async def one(self, kind: str, entity_id: uuid.UUID, render: Render, view: str = FULL) -> bytes:
        """The by-id view `kind` (a key of `BY_ID`) of one entity, as `view` shows it."""
        tags = [EVERYTHING, BY_ID[kind](entity_id)]
        return await self.engine.get(by_id_key(kind, entity_id, view), tags, render, kind)

    async def events_page(
        self,
        page: int,
        limit: int,
        render: Render,
        date_from: date | None = None,
        date_to: date | None = None,
        view: str = FULL,
    ) -> bytes:
        key = f"{PREFIX}v:events:{view}:{page}:{limit}:{date_from or ''}:{date_to or ''}"
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

    async def events_feed(self, day: date, render: Render) -> bytes:
        """The iCalendar feed of the events from `day` on (the same for every caller)."""
        key = f"{PREFIX}v:feed:{day.isoformat()}"
        return await self.engine.get(key, [EVERYTHING, EVENTS], render, "feed")

    async def close(self) -> None:
        await self.engine.close()


# What the body of each view shows, for the tags it depends on beyond its own.


def shows_events(event_ids: Iterable[uuid.UUID]) -> list[str]:
    return [event_tag(event_id) for event_id in event_ids]


def shows_registration(event_id: uuid.UUID, attendee_id: uuid.UUID) -> list[str]:
    return [event_tag(event_id), attendee_tag(attendee_id)]
