"""Registration rules: one seat per attendee per event, never more than max_attendees.

Both rules are held by PostgreSQL, not by a read-then-check here: the unique
(event_id, attendee_id) constraint refuses a duplicate, and the seat-counting
trigger updates the event row (a row lock that queues racing registrations)
under `CHECK (registered_count <= max_attendees)`, which refuses the one that
would overbook. This function maps those refusals to the contract's answers.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from eventms.cache import invalidation
from eventms.db.base import constraint_name
from eventms.db.json import one_json, page_json
from eventms.db.queries import Page, get_one_or_404, paginate
from eventms.errors import Conflict, NotFound
from eventms.notifications.jobs import defer_confirmation
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.registrations.schemas import RegistrationWithTicket
from eventms.registrations.views import ONE_REGISTRATION, REGISTRATION_JSON, REGISTRATIONS
from eventms.waitlist.service import follow_promotions
from eventms.webhooks import emit
from eventms.webhooks.catalog import EventType

# Both sides are many-to-one: joined into the same query.
_WITH_BOTH = (joinedload(Registration.event), joinedload(Registration.attendee))

FULL = "Sorry the event is full"
ALREADY = "You are already registered for this event"


class EventFull(Conflict):
    """No seat left (callers may offer something else, e.g. a waiting list)."""

    def __init__(self) -> None:
        super().__init__(FULL)


async def register(
    session: AsyncSession, *, event_id: uuid.UUID, attendee_id: uuid.UUID
) -> Registration:
    """Take a seat for the attendee at the event, in the session's transaction."""
    try:
        registration_id = await session.scalar(
            insert(Registration)
            .values(id=uuid.uuid4(), event_id=event_id, attendee_id=attendee_id)
            .returning(Registration.id)
        )
    except IntegrityError as error:
        match constraint_name(error):
            case "uq_registrations_event_attendee":
                raise Conflict(ALREADY) from None
            case "ck_events_capacity":
                raise EventFull from None
            case "fk_registrations_event_id_events":
                raise NotFound.by_id("Event", event_id) from None
            case "fk_registrations_attendee_id_attendees":
                raise NotFound.by_id("Attendee", attendee_id) from None
        raise
    assert registration_id is not None
    invalidation.registration_changed(session, registration_id, event_id, attendee_id)
    # In this transaction: the registration and its confirmation job commit together.
    await defer_confirmation(session, registration_id)
    registration = await get_registration(session, registration_id=registration_id)
    messages.announce_seats_changed(session, registration.event, registered=True)
    await emit(
        session, EventType.REGISTRATION_CREATED, RegistrationWithTicket.model_validate(registration)
    )
    return registration


async def get_registration(session: AsyncSession, *, registration_id: uuid.UUID) -> Registration:
    return await get_one_or_404(session, Registration, registration_id, options=_WITH_BOTH)


async def list_registrations(
    session: AsyncSession, *, page: Page
) -> tuple[list[Registration], int]:
    statement = (
        select(Registration)
        .order_by(Registration.created_at.desc(), Registration.id)
        .options(*_WITH_BOTH)
    )
    return await paginate(session, statement, page)


async def registration_json(
    session: AsyncSession, *, registration_id: uuid.UUID
) -> tuple[bytes, uuid.UUID, uuid.UUID]:
    """The registration with its event and attendee, rendered by PostgreSQL, and the
    ids of both (their cache tags)."""
    row = await one_json(
        session,
        REGISTRATION_JSON,
        ONE_REGISTRATION,
        {"id": registration_id},
        "r.event_id",
        "r.attendee_id",
    )
    if row is None:
        raise NotFound.by_id("Registration", registration_id)
    return str(row.body).encode(), row.event_id, row.attendee_id


async def registrations_json(session: AsyncSession, *, page: Page) -> tuple[bytes, int]:
    """A page of registrations, newest first, rendered by PostgreSQL, and the total."""
    return await page_json(session, REGISTRATION_JSON, REGISTRATIONS, page, {})


async def cancel(session: AsyncSession, *, registration_id: uuid.UUID) -> Registration:
    """Delete the registration and return it as it was. The trigger frees its seat,
    or gives it to the head of the event's waiting list in the same statement."""
    registration = await get_registration(session, registration_id=registration_id)
    # Two cancels racing: the second finds the row gone once the first commits.
    deleted = await session.scalar(
        delete(Registration).where(Registration.id == registration_id).returning(Registration.id)
    )
    if deleted is None:
        raise NotFound.by_id("Registration", registration_id)
    invalidation.registration_changed(
        session, registration_id, registration.event_id, registration.attendee_id
    )
    await follow_promotions(session, event_ids=[registration.event_id])
    # The event embedded in the answer shows the seat freed (or taken by the promoted).
    await session.refresh(registration.event)
    messages.announce_seats_changed(session, registration.event, registered=False)
    await emit(
        session,
        EventType.REGISTRATION_CANCELED,
        RegistrationWithTicket.model_validate(registration),
    )
    return registration


async def list_event_registrations(
    session: AsyncSession, *, event_id: uuid.UUID, page: Page
) -> tuple[list[Registration], int]:
    """A page of the event's registrations, first registered first, with attendees."""
    statement = (
        select(Registration)
        .where(Registration.event_id == event_id)
        .order_by(Registration.created_at, Registration.id)
        .options(joinedload(Registration.attendee))
    )
    return await paginate(session, statement, page)
