"""Waiting-list rules: only a full event has a line; whoever joined first gets the
next free seat, in the transaction that frees it.

The rules are held by PostgreSQL (migration 0005 says how): joining locks the event
row and is refused there while seats are free or the attendee holds one; freeing a
seat promotes the head of the line inside the same statement. This module maps the
refusals to the contract's answers, and does what the database cannot: after a
write that freed seats, `follow_promotions` defers the promoted attendees'
confirmation mails (in the same transaction) and announces them after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Select, Text, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from eventms.attendees.models import Attendee
from eventms.cache import invalidation
from eventms.db.base import constraint_name
from eventms.db.queries import Page, get_one_or_404, paginate
from eventms.errors import Conflict, NotFound
from eventms.events.models import Event
from eventms.notifications.jobs import defer_confirmations
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.registrations.schemas import RegistrationWithTicket
from eventms.waitlist.models import WaitlistEntry
from eventms.waitlist.schemas import WaitlistEntryOut
from eventms.webhooks import emit
from eventms.webhooks.catalog import EventType

SEATS_FREE = "The event has free seats: register instead"
ALREADY_REGISTERED = "You are already registered for this event"
ALREADY_WAITING = "You are already on the waiting list for this event"


@dataclass(frozen=True)
class WaitingPlace:
    """An entry and its place in line (1 = next to get a seat)."""

    id: uuid.UUID
    event_id: uuid.UUID
    attendee_id: uuid.UUID
    position: int
    created_at: datetime
    attendee: Attendee | None = None

    @classmethod
    def of(cls, entry: WaitlistEntry, position: int) -> WaitingPlace:
        return cls(
            entry.id, entry.event_id, entry.attendee_id, position, entry.created_at, entry.attendee
        )


async def _position(session: AsyncSession, event_id: uuid.UUID, seq: int) -> int:
    """1 + the entries ahead of `seq`. Exact when the caller holds the event row lock
    (every entry ahead of it has then committed: places are drawn under that lock)."""
    ahead = await session.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id, WaitlistEntry.seq < seq)
    )
    return 1 + (ahead or 0)


async def join_waitlist(
    session: AsyncSession, *, event_id: uuid.UUID, attendee_id: uuid.UUID
) -> WaitingPlace:
    """Put the attendee in line for the (full) event, in the session's transaction.

    Conflict when the event has free seats, or the attendee is registered or already
    waiting; NotFound for an unknown event or attendee. The signup route calls this
    on a full event.
    """
    try:
        row = (
            await session.execute(
                insert(WaitlistEntry)
                .values(id=uuid.uuid4(), event_id=event_id, attendee_id=attendee_id)
                .returning(WaitlistEntry.id, WaitlistEntry.seq, WaitlistEntry.created_at)
            )
        ).one()
    except IntegrityError as error:
        match constraint_name(error):
            case "waitlist_entries_event_full":
                raise Conflict(SEATS_FREE) from None
            case "waitlist_entries_not_registered":
                raise Conflict(ALREADY_REGISTERED) from None
            case "uq_waitlist_entries_event_attendee":
                raise Conflict(ALREADY_WAITING) from None
            case "fk_waitlist_entries_event_id_events":
                raise NotFound.by_id("Event", event_id) from None
            case "fk_waitlist_entries_attendee_id_attendees":
                raise NotFound.by_id("Attendee", attendee_id) from None
        raise
    # The insert's trigger holds the event row lock until commit: the position is final.
    position = await _position(session, event_id, row.seq)
    invalidation.waitlist_changed(session, event_id)
    place = WaitingPlace(row.id, event_id, attendee_id, position, row.created_at)
    await emit(session, EventType.WAITLIST_JOINED, WaitlistEntryOut.model_validate(place))
    return place


async def list_waitlist(
    session: AsyncSession, *, event_id: uuid.UUID, page: Page
) -> tuple[list[WaitingPlace], int]:
    """A page of the event's line, first come first, each entry with its attendee."""
    await get_one_or_404(session, Event, event_id)
    statement = (
        select(WaitlistEntry)
        .where(WaitlistEntry.event_id == event_id)
        .order_by(WaitlistEntry.seq)
        .options(joinedload(WaitlistEntry.attendee))
    )
    entries, total = await paginate(session, statement, page)
    # One scan of one event's whole line, in order: a row's place is its rank in it.
    return [WaitingPlace.of(e, page.offset + i + 1) for i, e in enumerate(entries)], total


async def leave_waitlist(session: AsyncSession, *, entry_id: uuid.UUID) -> WaitingPlace:
    """Remove the entry; answer it with the place it had."""
    event_id = await session.scalar(
        select(WaitlistEntry.event_id).where(WaitlistEntry.id == entry_id)
    )
    if event_id is None:
        raise NotFound.by_id("Waiting list entry", entry_id)
    # The event row first, as every writer of the line does (a promotion holds it while
    # it removes entries): taking the entry's row first could deadlock with one.
    await _lock_events(session, select(Event.id).where(Event.id == event_id))
    entry = await session.scalar(
        delete(WaitlistEntry).where(WaitlistEntry.id == entry_id).returning(WaitlistEntry)
    )
    if entry is None:
        raise NotFound.by_id("Waiting list entry", entry_id)
    # The delete's trigger holds the event row lock: no entry ahead can change meanwhile.
    position = await _position(session, entry.event_id, entry.seq)
    invalidation.waitlist_changed(session, entry.event_id)
    return WaitingPlace(entry.id, entry.event_id, entry.attendee_id, position, entry.created_at)


async def _lock_events(session: AsyncSession, events: Select[uuid.UUID]) -> list[uuid.UUID]:
    # FOR NO KEY UPDATE, the lock the seat counter's UPDATE takes: registrations'
    # foreign-key checks (FOR KEY SHARE) still pass; in id order, for many events.
    locked = await session.scalars(events.order_by(Event.id).with_for_update(key_share=True))
    return list(locked)


async def follow_promotions(
    session: AsyncSession, *, event_ids: Collection[uuid.UUID]
) -> list[Registration]:
    """The registrations this transaction promoted at `event_ids` (the triggers did it):
    defer their confirmation mails here, drop what they made stale and announce them
    after the commit. Call once per transaction, after the write that freed seats."""
    if not event_ids:
        return []
    this_transaction = func.pg_current_xact_id().cast(Text).cast(BigInteger)
    promoted = list(
        await session.scalars(
            select(Registration)
            .where(
                Registration.event_id.in_(event_ids), Registration.promoted_in == this_transaction
            )
            .order_by(Registration.event_id, Registration.promoted_at, Registration.id)
        )
    )
    if not promoted:
        return []
    await defer_confirmations(session, [r.id for r in promoted])
    by_event: dict[uuid.UUID, list[uuid.UUID]] = {}
    for registration in promoted:
        invalidation.registration_changed(
            session, registration.id, registration.event_id, registration.attendee_id
        )
        by_event.setdefault(registration.event_id, []).append(registration.id)
    events = await session.scalars(
        select(Event).where(Event.id.in_(by_event)).execution_options(populate_existing=True)
    )
    for event in events:
        messages.announce_waitlist_promoted(session, event, by_event[event.id])
    shown = await session.scalars(
        select(Registration)
        .where(Registration.id.in_([r.id for r in promoted]))
        .options(joinedload(Registration.event), joinedload(Registration.attendee))
        .order_by(Registration.event_id, Registration.promoted_at, Registration.id)
    )
    for registration in shown:
        data = RegistrationWithTicket.model_validate(registration)
        await emit(session, EventType.WAITLIST_PROMOTED, data)
    return promoted
