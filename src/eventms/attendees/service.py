"""Attendee rules: email unique whatever its case; search by name and email."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from eventms import cache
from eventms.attendees.models import Attendee
from eventms.db import constraint_name
from eventms.events.models import Event
from eventms.http.errors import Conflict, NotFound
from eventms.realtime import messages
from eventms.registrations.models import Registration

# A single joined query (one round trip) instead of three.
_WITH_EVENTS = joinedload(Attendee.registrations).joinedload(Registration.event)
EMAIL_UNIQUE = "uq_attendees_email_lower"


def _not_found(attendee_id: uuid.UUID) -> NotFound:
    return NotFound(f"Attendee with ID {attendee_id} not found")


def _email_taken(email: str) -> Conflict:
    return Conflict(f"The Email {email} already exists")


def _contains(text: str) -> str:
    """An ILIKE pattern matching `text` literally anywhere: % and _ are plain characters."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def create_attendee(session: AsyncSession, *, name: str, email: str) -> Attendee:
    attendee = Attendee(name=name, email=email)
    session.add(attendee)
    try:
        await session.flush()
    except IntegrityError as error:
        if constraint_name(error) == EMAIL_UNIQUE:
            raise _email_taken(email) from None
        raise
    await session.refresh(attendee)
    cache.attendee_created(session)
    return attendee


async def get_attendee(session: AsyncSession, *, attendee_id: uuid.UUID) -> Attendee:
    rows = await session.scalars(
        select(Attendee)
        .where(Attendee.id == attendee_id)
        .options(_WITH_EVENTS)
        .execution_options(populate_existing=True)
    )
    attendee = rows.unique().one_or_none()
    if attendee is None:
        raise _not_found(attendee_id)
    return attendee


async def search_attendees(
    session: AsyncSession,
    *,
    offset: int,
    limit: int,
    name: str | None = None,
    email: str | None = None,
) -> tuple[Sequence[Attendee], int]:
    """Attendees whose name and email contain the given texts (case-insensitive, AND)."""
    conditions = []
    if name:
        conditions.append(Attendee.name.ilike(_contains(name), escape="\\"))
    if email:
        conditions.append(Attendee.email.ilike(_contains(email), escape="\\"))
    # The page and the number of matches from one scan: a substring search is the
    # costly part, and a separate count(*) would run it twice.
    rows = (
        await session.execute(
            select(Attendee, func.count().over().label("total"))
            .where(*conditions)
            .order_by(Attendee.name, Attendee.id)
            .offset(offset)
            .limit(limit)
        )
    ).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    # Past the last page (or nothing matches): the window has no row to tell the total.
    total = await session.scalar(select(func.count()).select_from(Attendee).where(*conditions))
    return [], total or 0


async def _lock(session: AsyncSession, attendee_id: uuid.UUID) -> None:
    """Lock the attendee's row until commit, so that no registration of theirs can
    commit meanwhile (its foreign-key check waits): the registrations read next are
    then all the events that show this attendee, which the cache must drop."""
    found = await session.scalar(
        select(Attendee.id).where(Attendee.id == attendee_id).with_for_update()
    )
    if found is None:
        raise _not_found(attendee_id)


async def update_attendee(
    session: AsyncSession, *, attendee_id: uuid.UUID, changes: dict[str, str]
) -> Attendee:
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
            raise _not_found(attendee_id)
    attendee = await get_attendee(session, attendee_id=attendee_id)
    if changes:
        cache.attendee_changed(session, attendee_id, (r.event_id for r in attendee.registrations))
    return attendee


async def delete_attendee(session: AsyncSession, *, attendee_id: uuid.UUID) -> Attendee:
    """Delete the attendee (their registrations cascade) and return them as they were."""
    await _lock(session, attendee_id)
    attendee = await get_attendee(session, attendee_id=attendee_id)
    # A concurrent delete may win between the read and this statement: then it is gone.
    deleted = await session.scalar(
        delete(Attendee).where(Attendee.id == attendee_id).returning(Attendee.id)
    )
    if deleted is None:
        raise _not_found(attendee_id)
    freed = [r.event_id for r in attendee.registrations]
    cache.attendee_changed(session, attendee_id, freed)
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
