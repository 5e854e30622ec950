"""Attendee rules: email unique whatever its case; search by name and email."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from eventms.attendees.models import Attendee
from eventms.attendees.schemas import AttendeeCreate
from eventms.attendees.views import (
    ATTENDEE_DETAIL_JSON,
    ATTENDEE_JSON,
    ONE_ATTENDEE,
    SHOWN_EVENTS,
    search_matches,
)
from eventms.cache import invalidation
from eventms.db.base import constraint_name
from eventms.db.json import matches_page_json, one_json
from eventms.db.queries import Page, contains, get_one_or_404, paginate
from eventms.errors import Conflict, NotFound
from eventms.events.models import Event
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.waitlist.models import WaitlistEntry
from eventms.waitlist.service import follow_promotions

# A single joined query (one round trip) instead of three.
_WITH_EVENTS = joinedload(Attendee.registrations).joinedload(Registration.event)
EMAIL_UNIQUE = "uq_attendees_email_lower"


def _email_taken(email: str) -> Conflict:
    return Conflict(f"The Email {email} already exists")


async def create_attendee(session: AsyncSession, *, fields: AttendeeCreate) -> Attendee:
    attendee = Attendee(**fields.model_dump())
    session.add(attendee)
    try:
        await session.flush()
    except IntegrityError as error:
        if constraint_name(error) == EMAIL_UNIQUE:
            raise _email_taken(fields.email) from None
        raise
    await session.refresh(attendee)
    invalidation.attendee_created(session)
    return attendee


async def get_attendee(session: AsyncSession, *, attendee_id: uuid.UUID) -> Attendee:
    return await get_one_or_404(session, Attendee, attendee_id, options=[_WITH_EVENTS])


async def search_attendees(
    session: AsyncSession,
    *,
    page: Page,
    name: str | None = None,
    email: str | None = None,
) -> tuple[list[Attendee], int]:
    """Attendees whose name and email contain the given texts (case-insensitive, AND)."""
    conditions = []
    if name:
        conditions.append(Attendee.name.ilike(contains(name), escape="\\"))
    if email:
        conditions.append(Attendee.email.ilike(contains(email), escape="\\"))
    statement = select(Attendee).where(*conditions).order_by(Attendee.name, Attendee.id)
    return await paginate(session, statement, page)


async def attendee_json(
    session: AsyncSession, *, attendee_id: uuid.UUID
) -> tuple[bytes, list[uuid.UUID]]:
    """The attendee with their registrations and events, rendered by PostgreSQL, and
    the ids of those events (their cache tags)."""
    row = await one_json(
        session, ATTENDEE_DETAIL_JSON, ONE_ATTENDEE, {"id": attendee_id}, SHOWN_EVENTS
    )
    if row is None:
        raise NotFound.by_id("Attendee", attendee_id)
    return str(row.body).encode(), list(row.event_ids)


async def search_attendees_json(
    session: AsyncSession, *, page: Page, name: str | None = None, email: str | None = None
) -> tuple[bytes, int]:
    """`search_attendees`, as a JSON array rendered by PostgreSQL, and the total."""
    matches, params = search_matches(name=name, email=email)
    return await matches_page_json(session, ATTENDEE_JSON, matches, page, params)


async def _lock(session: AsyncSession, attendee_id: uuid.UUID) -> None:
    """Lock the attendee's row until commit, so that no registration of theirs can
    commit meanwhile (its foreign-key check waits): the registrations read next are
    then all the events that show this attendee, which the cache must drop."""
    found = await session.scalar(
        select(Attendee.id).where(Attendee.id == attendee_id).with_for_update()
    )
    if found is None:
        raise NotFound.by_id("Attendee", attendee_id)


async def _lock_events_of(session: AsyncSession, attendee_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock, in id order, the events where the attendee holds a seat or waits, before
    the attendee's own row. A cancellation or a join locks its event, then (promoting
    or joining) the attendee's row; the deletion's cascade locks the same events after
    the attendee: without this, the two (or two deletions sharing events, taken in
    different orders) could deadlock. FOR NO KEY UPDATE, the seat counter's lock."""
    seated = select(Registration.event_id).where(Registration.attendee_id == attendee_id)
    waiting = select(WaitlistEntry.event_id).where(WaitlistEntry.attendee_id == attendee_id)
    locked = await session.scalars(
        select(Event.id)
        .where(Event.id.in_(seated.union(waiting)))
        .order_by(Event.id)
        .with_for_update(key_share=True)
    )
    return list(locked)


async def update_attendee(
    session: AsyncSession, *, attendee_id: uuid.UUID, changes: dict[str, Any]
) -> Attendee:
    """Apply `changes` (column: value, the fields sent) to the attendee."""
    if changes:
        await _lock(session, attendee_id)
        try:
            result = await session.execute(
                update(Attendee)
                .where(Attendee.id == attendee_id)
                .values(**changes, updated_at=func.now())
                .returning(Attendee.id)
            )
        except IntegrityError as error:
            if constraint_name(error) == EMAIL_UNIQUE:
                raise _email_taken(changes["email"]) from None
            raise
        if result.scalar_one_or_none() is None:
            raise NotFound.by_id("Attendee", attendee_id)
    attendee = await get_attendee(session, attendee_id=attendee_id)
    if changes:
        invalidation.attendee_changed(
            session, attendee_id, (r.event_id for r in attendee.registrations)
        )
    return attendee


async def delete_attendee(session: AsyncSession, *, attendee_id: uuid.UUID) -> Attendee:
    """Delete the attendee (their registrations and waiting-list entries cascade; each
    seat freed goes to the head of its event's line) and return them as they were."""
    held = await _lock_events_of(session, attendee_id)
    await _lock(session, attendee_id)
    attendee = await get_attendee(session, attendee_id=attendee_id)
    # A concurrent delete may win between the read and this statement: then it is gone.
    deleted = await session.scalar(
        delete(Attendee).where(Attendee.id == attendee_id).returning(Attendee.id)
    )
    if deleted is None:
        raise NotFound.by_id("Attendee", attendee_id)
    freed = [r.event_id for r in attendee.registrations]
    invalidation.attendee_changed(session, attendee_id, [*freed, *held])
    await follow_promotions(session, event_ids=freed)
    if freed:
        # The cascade freed a seat at each of their events: reload those events (one
        # query, refreshing the objects embedded in the answer too) and tell their
        # subscribers, as a cancellation would.
        events = await session.scalars(
            select(Event).where(Event.id.in_(freed)).execution_options(populate_existing=True)
        )
        for event in events:
            messages.announce_seats_changed(session, event, registered=False)
    return attendee
