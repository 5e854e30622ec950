"""Event rules: unique (location, date), capacity never below the seats taken."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from eventms.cache import invalidation
from eventms.db.base import constraint_name
from eventms.db.json import one_json, page_json
from eventms.db.queries import Page, contains, get_one_or_404, paginate
from eventms.errors import Conflict, InvalidInput, NotFound
from eventms.events.models import Event
from eventms.events.schemas import EventCreate
from eventms.events.views import EVENT_JSON, EVENT_PUBLIC_JSON, ONE_EVENT, EventOut, events_source
from eventms.notifications import notices
from eventms.notifications.jobs import defer_event_canceled, defer_event_updated
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.waitlist.service import follow_promotions
from eventms.webhooks import emit
from eventms.webhooks.catalog import EventType

_WITH_ATTENDEES = selectinload(Event.registrations).selectinload(Registration.attendee)
# One event: a single joined query (one round trip) instead of three.
_ONE_WITH_ATTENDEES = joinedload(Event.registrations).joinedload(Registration.attendee)
LOCATION_DATE_UNIQUE = "uq_events_location_date"


def _duplicate(location: str | None, on: date) -> Conflict:
    return Conflict(f"An event will already take place at {on.isoformat()} in {location}")


async def create_event(session: AsyncSession, *, fields: EventCreate) -> Event:
    event = Event(**fields.model_dump(), registered_count=0)
    session.add(event)
    try:
        await session.flush()
    except IntegrityError as error:
        if constraint_name(error) == LOCATION_DATE_UNIQUE:
            raise _duplicate(fields.location, fields.date) from None
        raise
    invalidation.event_created(session)
    created = await get_event(session, event_id=event.id)
    messages.announce_event_created(session, created)
    await emit(session, EventType.EVENT_CREATED, EventOut.model_validate(created))
    return created


async def get_event(session: AsyncSession, *, event_id: uuid.UUID) -> Event:
    return await get_one_or_404(session, Event, event_id, options=[_ONE_WITH_ATTENDEES])


async def list_events(
    session: AsyncSession,
    *,
    page: Page,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[list[Event], int]:
    """A page of events ordered by date, optionally within [date_from, date_to]."""
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("from", "must not be after 'to'")
    conditions = []
    if date_from:
        conditions.append(Event.date >= date_from)
    if date_to:
        conditions.append(Event.date <= date_to)
    statement = (
        select(Event)
        .where(*conditions)
        .order_by(Event.date, Event.created_at, Event.id)
        .options(_WITH_ATTENDEES)
    )
    return await paginate(session, statement, page)


async def event_json(session: AsyncSession, *, event_id: uuid.UUID, full_view: bool) -> bytes:
    """The event as the API shows it (full or public view), rendered by PostgreSQL."""
    view = EVENT_JSON if full_view else EVENT_PUBLIC_JSON
    row = await one_json(session, view, ONE_EVENT, {"id": event_id})
    if row is None:
        raise NotFound.by_id("Event", event_id)
    return str(row.body).encode()


async def events_json(
    session: AsyncSession,
    *,
    page: Page,
    full_view: bool,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[bytes, int]:
    """A page of events by date (optionally within [date_from, date_to]) as a JSON
    array rendered by PostgreSQL, and their number in all."""
    if date_from and date_to and date_from > date_to:
        raise InvalidInput("from", "must not be after 'to'")
    view = EVENT_JSON if full_view else EVENT_PUBLIC_JSON
    params = {"date_from": date_from, "date_to": date_to}
    return await page_json(session, view, events_source(date_from, date_to), page, params)


async def update_event(
    session: AsyncSession, *, event_id: uuid.UUID, changes: dict[str, Any]
) -> Event:
    """Apply `changes` (column: value, the fields sent) to the event."""
    # Locked: what a move notice calls "before" must be the state this UPDATE replaces.
    current = (
        await session.execute(
            select(Event.location, Event.date, Event.start_time, Event.timezone)
            .where(Event.id == event_id)
            .with_for_update()
        )
    ).one_or_none()
    if current is None:
        raise NotFound.by_id("Event", event_id)
    if not changes:
        return await get_event(session, event_id=event_id)
    moved_from = notices.move_of(current, changes)
    values: dict[str, Any] = {**changes, "updated_at": func.now()}
    if moved_from is not None:
        values["calendar_sequence"] = Event.calendar_sequence + 1
    statement = update(Event).where(Event.id == event_id)
    if "max_attendees" in changes:
        # Lowering capacity below the seats taken is refused atomically: the row is
        # only updated when it still fits, so a racing registration cannot slip in.
        statement = statement.where(Event.registered_count <= changes["max_attendees"])
    try:
        result = await session.execute(statement.values(**values).returning(Event.id))
    except IntegrityError as error:
        if constraint_name(error) == LOCATION_DATE_UNIQUE:
            raise _duplicate(
                changes.get("location", current.location), changes.get("date", current.date)
            ) from None
        raise
    if result.scalar_one_or_none() is None:
        taken = await session.scalar(select(Event.registered_count).where(Event.id == event_id))
        raise Conflict(f"Event already has {taken} registrations")
    invalidation.event_changed(session, event_id)
    if moved_from is not None:
        await defer_event_updated(session, event_id=event_id, before=moved_from)
    if "max_attendees" in changes:
        # A higher capacity gave its new seats to the waiting list (a trigger).
        await follow_promotions(session, event_ids=[event_id])
    updated = await get_event(session, event_id=event_id)
    messages.announce_event_updated(session, updated, seats_changed="max_attendees" in changes)
    await emit(session, EventType.EVENT_UPDATED, EventOut.model_validate(updated))
    return updated


async def delete_event(session: AsyncSession, *, event_id: uuid.UUID) -> Event:
    """Delete the event (its registrations cascade) and return it as it was."""
    event = await get_event(session, event_id=event_id)
    # Under the event row lock, so nobody registers or joins unnoticed before the delete.
    await defer_event_canceled(session, event_id=event_id)
    as_it_was = EventOut.model_validate(event)
    # A concurrent delete may win between the read and this statement: then it is gone.
    deleted = await session.scalar(delete(Event).where(Event.id == event_id).returning(Event.id))
    if deleted is None:
        raise NotFound.by_id("Event", event_id)
    invalidation.event_changed(session, event_id)
    messages.announce_event_deleted(session, event)
    await emit(session, EventType.EVENT_DELETED, as_it_was)
    return event


async def find_events(
    session: AsyncSession,
    *,
    page: Page,
    name: str | None = None,
    date_from: date | None = None,
) -> tuple[list[Event], int]:
    """A page of events by date, without their registrations (for lists that show
    counts only): those dated `date_from` or later, whose name contains `name`
    (case-insensitive), when given."""
    conditions = []
    if date_from is not None:
        conditions.append(Event.date >= date_from)
    if name:
        conditions.append(Event.name.ilike(contains(name)))
    statement = (
        select(Event)
        .where(*conditions)
        .order_by(Event.date, Event.start_time.nulls_first(), Event.created_at, Event.id)
    )
    return await paginate(session, statement, page)
