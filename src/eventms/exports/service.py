"""What the exports read: an event's name (for the CSV's file name), upcoming events."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.errors import NotFound
from eventms.events.models import Event

# The feed is one document; past this many upcoming events it holds the soonest.
FEED_MAX_EVENTS = 1000


async def event_name(session: AsyncSession, *, event_id: uuid.UUID) -> str:
    name = await session.scalar(select(Event.name).where(Event.id == event_id))
    if name is None:
        raise NotFound.by_id("Event", event_id)
    return name


async def upcoming_events(session: AsyncSession, *, today: date) -> list[Event]:
    """Events dated `today` or later, soonest first (the events.date index)."""
    statement = (
        select(Event)
        .where(Event.date >= today)
        .order_by(Event.date, Event.start_time.nulls_first(), Event.id)
        .limit(FEED_MAX_EVENTS)
    )
    return list(await session.scalars(statement))
