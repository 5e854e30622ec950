"""Self-service rules: an anonymous signup, and what a manage link may do.

A signup names an attendee only by email. It never changes or reveals what is
stored about an existing attendee: the email may be someone else's. The registration
itself is `registrations.service.register`, so the seat trigger, the confirmation
job and the cache and Socket.IO effects are those of `POST /registration`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.attendees.models import Attendee
from eventms.cache import invalidation
from eventms.errors import NotFound
from eventms.registrations import service as registrations
from eventms.registrations.models import Registration
from eventms.registrations.service import EventFull
from eventms.waitlist.service import WaitingPlace, join_waitlist

NOT_FOUND = "Registration not found"
_ATTEMPTS = 3


async def sign_up(
    session: AsyncSession, *, event_id: uuid.UUID, name: str, email: str
) -> registrations.Registered | WaitingPlace:
    """Register the attendee with this email (made with `name` if there is none yet);
    on a full event, put them in its waiting list instead."""
    attendee_id = await find_or_create_attendee(session, name=name, email=email)
    try:
        # A savepoint: the attendee made above outlives a refusal that is not an
        # error of the whole signup (the full-event branch below, once it offers a
        # waiting list instead).
        async with session.begin_nested():
            return await registrations.register(session, event_id=event_id, attendee_id=attendee_id)
    except EventFull:
        return await _event_full(session, event_id=event_id, attendee_id=attendee_id)


async def _event_full(
    session: AsyncSession, *, event_id: uuid.UUID, attendee_id: uuid.UUID
) -> WaitingPlace:
    """A signup for a full event joins its waiting list (409 when already waiting;
    a seat freed meanwhile is a 409 `register instead`, and a retry registers)."""
    return await join_waitlist(session, event_id=event_id, attendee_id=attendee_id)


async def find_or_create_attendee(session: AsyncSession, *, name: str, email: str) -> uuid.UUID:
    """The id of the attendee whose email is `email` whatever its case, made now if
    there is none. Race-safe: two signups with one new email insert one row (the
    second's ON CONFLICT waits for the first to commit, then finds its row)."""
    for _ in range(_ATTEMPTS):
        created = await session.scalar(
            insert(Attendee)
            .values(id=uuid.uuid4(), name=name, email=email)
            .on_conflict_do_nothing(index_elements=[func.lower(Attendee.email)])
            .returning(Attendee.id)
        )
        if created is not None:
            invalidation.attendee_created(session)
            return created
        found = await session.scalar(
            select(Attendee.id).where(func.lower(Attendee.email) == func.lower(email))
        )
        if found is not None:
            return found
        # The attendee that was in the way was deleted meanwhile: insert again.
    raise RuntimeError(f"no attendee found or made for a signup after {_ATTEMPTS} attempts")


async def managed_registration(
    session: AsyncSession, *, registration_id: uuid.UUID | None
) -> Registration:
    """The registration of a manage link (None: a token that names none)."""
    if registration_id is None:
        raise NotFound(NOT_FOUND)
    try:
        return await registrations.get_registration(session, registration_id=registration_id)
    except NotFound:
        raise NotFound(NOT_FOUND) from None


async def cancel_managed(
    session: AsyncSession, *, registration_id: uuid.UUID | None
) -> Registration:
    """Cancel the registration of a manage link, as `DELETE /registration/{id}` does."""
    if registration_id is None:
        raise NotFound(NOT_FOUND)
    try:
        return await registrations.cancel(session, registration_id=registration_id)
    except NotFound:
        raise NotFound(NOT_FOUND) from None
