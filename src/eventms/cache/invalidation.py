"""What each write makes stale. Services call these inside their transaction; the
tags are bumped once it has committed (and not at all if it rolls back)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from eventms.cache.client import connect_redis
from eventms.cache.keys import (
    ATTENDEES,
    EVENTS,
    REGISTRATIONS,
    Cache,
    attendee_tag,
    event_tag,
    registration_tag,
    shows_events,
)
from eventms.cache.multiplex import ScriptHost
from eventms.config import Settings
from eventms.db.effects import after_commit

# The key of a session's `.info` under which the app puts its `Cache`.
SESSION_CACHE = "eventms.cache"


def _stale_after_commit(session: AsyncSession, tags: list[str]) -> None:
    cache: Cache | None = session.info.get(SESSION_CACHE)
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


def waitlist_changed(session: AsyncSession, event_id: uuid.UUID) -> None:
    """Someone joined or left the event's waiting list: every view of the event shows
    its `waitlistCount` (the event, the lists, the registrations that embed it)."""
    event_changed(session, event_id)


def checkins_changed(session: AsyncSession, event_id: uuid.UUID) -> None:
    """A ticket of the event was checked in or out: its `checkedInCount` changed, in
    every view that shows the event."""
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
        await Cache(cast(ScriptHost, redis), settings.ttl).engine.bump_everything()
    finally:
        await redis.aclose()
