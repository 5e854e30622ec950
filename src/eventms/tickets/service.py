"""Check-in rules: a ticket gets in once, at its own event.

"Once" is the primary key of `checkins`: the scan inserts with `ON CONFLICT DO
NOTHING`, so of scans racing on one code at any number of doors and instances,
PostgreSQL lets exactly one insert; the others wait for it, insert nothing, and read
the winner's row for their 409. `checked_in_count` follows by trigger.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eventms.attendees.models import Attendee
from eventms.cache import invalidation
from eventms.errors import Conflict, NotFound
from eventms.events.models import Event
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.tickets.codes import read_ticket_code
from eventms.tickets.schemas import CheckinAttendee, CheckinOut, iso_utc
from eventms.webhooks import emit
from eventms.webhooks.catalog import EventType

TICKET_NOT_FOUND = "Ticket not found"
OTHER_EVENT = "This ticket is for another event"

_INSERT = text(
    "INSERT INTO checkins (registration_id, event_id, nonce)"
    " VALUES (:registration_id, :event_id, :nonce)"
    " ON CONFLICT (registration_id) DO NOTHING"
    " RETURNING checked_in_at"
)
_EXISTING = text("SELECT checked_in_at, nonce FROM checkins WHERE registration_id = :id")
_REVERT = text("DELETE FROM checkins WHERE registration_id = :id RETURNING event_id, checked_in_at")


async def check_in(
    session: AsyncSession,
    *,
    code: str,
    event_id: uuid.UUID | None = None,
    nonce: str | None = None,
) -> CheckinOut:
    """Check the ticket `code` in (at `event_id`, when given)."""
    bare = read_ticket_code(code)
    if bare is None:
        raise NotFound(TICKET_NOT_FOUND)
    ticket = (
        await session.execute(
            select(Registration.id, Registration.event_id, Attendee.name)
            .join(Attendee, Attendee.id == Registration.attendee_id)
            .where(Registration.ticket_code == bare)
        )
    ).one_or_none()
    if ticket is None:
        raise NotFound(TICKET_NOT_FOUND)
    if event_id is not None and ticket.event_id != event_id:
        raise Conflict(OTHER_EVENT)

    def answer(checked_in_at: object) -> CheckinOut:
        return CheckinOut.model_validate(
            {
                "registration_id": ticket.id,
                "event_id": ticket.event_id,
                "attendee": CheckinAttendee(name=ticket.name),
                "checked_in_at": checked_in_at,
            }
        )

    params = {"registration_id": ticket.id, "event_id": ticket.event_id, "nonce": nonce}
    # Twice at most: a check-in reverted between our insert and our read frees the
    # ticket again.
    for _ in range(2):
        try:
            inserted = await session.scalar(_INSERT, params)
        except IntegrityError:  # the registration was canceled since we read it
            raise NotFound(TICKET_NOT_FOUND) from None
        if inserted is not None:
            checkin = answer(inserted)
            await _changed(session, checkin, messages.CHECKIN_CREATED)
            await emit(session, EventType.CHECKIN_CREATED, checkin)
            return checkin
        existing = (await session.execute(_EXISTING, {"id": ticket.id})).one_or_none()
        if existing is None:
            continue
        if nonce is not None and existing.nonce == nonce:
            return answer(existing.checked_in_at)  # the retried scan's first answer
        raise Conflict(f"Already checked in at {iso_utc(existing.checked_in_at)}")
    raise Conflict("The ticket's check-in is changing: scan it again")


async def revert(session: AsyncSession, *, registration_id: uuid.UUID) -> CheckinOut:
    """Undo the check-in of the registration; return it as it was."""
    gone = (await session.execute(_REVERT, {"id": registration_id})).one_or_none()
    if gone is None:
        raise NotFound(f"Registration with ID {registration_id} is not checked in")
    name = await session.scalar(
        select(Attendee.name)
        .join(Registration, Registration.attendee_id == Attendee.id)
        .where(Registration.id == registration_id)
    )
    checkin = CheckinOut.model_validate(
        {
            "registration_id": registration_id,
            "event_id": gone.event_id,
            "attendee": CheckinAttendee(name=name or ""),
            "checked_in_at": gone.checked_in_at,
        }
    )
    await _changed(session, checkin, messages.CHECKIN_REVERTED)
    return checkin


async def _changed(session: AsyncSession, checkin: CheckinOut, message: str) -> None:
    """The event's counter changed: its cached views go stale, its room hears it."""
    invalidation.checkins_changed(session, checkin.event_id)
    count = await session.scalar(select(Event.checked_in_count).where(Event.id == checkin.event_id))
    messages.announce_checkin(
        session,
        message,
        event_id=checkin.event_id,
        registration_id=checkin.registration_id,
        checked_in_at=iso_utc(checkin.checked_in_at),
        checked_in_count=count or 0,
    )
