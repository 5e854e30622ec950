"""Registration rules: one seat per attendee per event, never more than max_attendees.

Both rules are held by PostgreSQL, not by a read-then-check here: the unique
(event_id, attendee_id) constraint refuses a duplicate, and the seat-counting
trigger updates the event row (a row lock that queues racing registrations)
under `CHECK (registered_count <= max_attendees)`, which refuses the one that
would overbook. `register` maps those refusals to the contract's answers.

`register` is the hot write: its INSERT (which defers the confirmation job in the
same statement) and the read of the answer (rendered by PostgreSQL, db/json.py, with
the subscribed webhook endpoints) go in one round trip, then the request's session
commits: two round trips, no ORM object and no pydantic model on the way. Every
statement sent costs both sides a wake-up (a send, a receive), which on a small
machine was a fifth of the server's CPU for a registration: the fewer, the better.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from eventms.cache import invalidation
from eventms.db.driver import driver_connection
from eventms.db.json import one_json, page_json
from eventms.db.queries import Page, get_one_or_404, paginate
from eventms.errors import Conflict, NotFound
from eventms.notifications.jobs import DEFER_CONFIRMATION, confirmation_job
from eventms.realtime import messages
from eventms.registrations.models import Registration
from eventms.registrations.schemas import RegistrationWithTicket
from eventms.registrations.views import (
    ONE_REGISTRATION,
    REGISTRATION_JSON,
    REGISTRATION_OUT_JSON,
    REGISTRATIONS,
    json_with_ticket,
)
from eventms.tickets.codes import new_ticket_code
from eventms.waitlist.service import follow_promotions
from eventms.webhooks import emit
from eventms.webhooks.catalog import EventType
from eventms.webhooks.emit import emit_json, subscribed_ids_sql

# Both sides are many-to-one: joined into the same query.
_WITH_BOTH = (joinedload(Registration.event), joinedload(Registration.attendee))

FULL = "Sorry the event is full"
ALREADY = "You are already registered for this event"


class EventFull(Conflict):
    """No seat left (callers may offer something else, e.g. a waiting list)."""

    def __init__(self) -> None:
        super().__init__(FULL)


@dataclass(frozen=True)
class Registered:
    """A registration just made, with its answers already rendered by PostgreSQL."""

    id: uuid.UUID
    event_id: uuid.UUID
    attendee_id: uuid.UUID
    # The registration with its event (its seat taken) and attendee, as JSON:
    # `RegistrationWithTicket` (for `registrations:read`) and `RegistrationOut`.
    with_ticket_json: bytes
    out_json: bytes


# The usual refusals (a full event, a second registration, an unknown event or
# attendee) insert nothing rather than fail: a failed statement aborts the
# transaction, and its ROLLBACK makes psycopg forget every statement it prepared on
# the connection, so that the next registrations there plan theirs again (1.2 ms of
# PostgreSQL for the answer's SELECT). A seat taken by a racing registration since
# this statement's snapshot still fails, in the seat trigger, as before.
_INSERT = (
    "INSERT INTO registrations (id, event_id, attendee_id, ticket_code)"
    " SELECT %(id)s, e.id, a.id, %(ticket_code)s FROM events e, attendees a"
    " WHERE e.id = %(event_id)s AND a.id = %(attendee_id)s"
    " AND e.registered_count < e.max_attendees"
    " ON CONFLICT ON CONSTRAINT uq_registrations_event_attendee DO NOTHING"
)
# With its confirmation job, in the same statement: they commit together.
_INSERT_AND_DEFER = (
    f"WITH registered AS ({_INSERT} RETURNING id) {DEFER_CONFIRMATION} FROM registered"
)
# Why nothing was inserted, in the order the failed INSERT's checks would tell it
# (the unique key, then the foreign keys, then the seat trigger).
_REFUSAL = (
    "SELECT EXISTS (SELECT 1 FROM registrations"
    "  WHERE event_id = %(event_id)s AND attendee_id = %(attendee_id)s),"
    " (SELECT e.registered_count >= e.max_attendees FROM events e WHERE e.id = %(event_id)s),"
    " EXISTS (SELECT 1 FROM attendees WHERE id = %(attendee_id)s)"
)
# Read after the INSERT, in a statement of its own: one that began before the seat
# trigger ran would see the event without the seat just taken.
_REGISTERED = (
    f"SELECT {REGISTRATION_OUT_JSON.sql()},"
    " e.name, e.date, e.max_attendees - e.registered_count, e.max_attendees,"
    f" {subscribed_ids_sql(EventType.REGISTRATION_CREATED)}"
    f" {REGISTRATIONS.sql} WHERE r.id = %(id)s"
)


async def register(
    session: AsyncSession, *, event_id: uuid.UUID, attendee_id: uuid.UUID
) -> Registered:
    """Take a seat for the attendee at the event, in the session's transaction (a
    refusal outside a savepoint commits it: see `_refuse`).

    The INSERT (with the confirmation job's deferral) and the read of what it made
    travel together (psycopg's pipeline mode: one round trip).
    """
    registration_id, ticket_code = uuid.uuid4(), new_ticket_code()
    values = {
        "id": registration_id,
        "event_id": event_id,
        "attendee_id": attendee_id,
        "ticket_code": ticket_code,
    }
    with_job = {**values, **confirmation_job(registration_id)}
    connection = await driver_connection(session)
    try:
        async with connection.pipeline() as pipeline:
            try:
                await connection.execute(_INSERT_AND_DEFER, with_job)
                cursor = await connection.execute(_REGISTERED, values)
            except psycopg.errors.IntegrityError:
                # Refused while the rest was being queued: the pipeline is aborted;
                # end it here, or leaving it is an error of its own (psycopg logs it).
                with contextlib.suppress(psycopg.errors.PipelineAborted):
                    await pipeline.sync()
                raise
    except psycopg.errors.IntegrityError as error:
        match error.diag.constraint_name:
            case "uq_registrations_event_attendee":
                raise Conflict(ALREADY) from None
            case "ck_events_capacity":
                raise EventFull from None
            case "fk_registrations_event_id_events":
                raise NotFound.by_id("Event", event_id) from None
            case "fk_registrations_attendee_id_attendees":
                raise NotFound.by_id("Attendee", attendee_id) from None
        raise
    row = await cursor.fetchone()
    if row is None:
        await _refuse(session, connection, values)
    out, name, day, seats_left, seats, endpoints = row
    invalidation.registration_changed(session, registration_id, event_id, attendee_id)
    payload: messages.EventPayload = {
        "eventId": str(event_id),
        "name": name,
        "date": day.isoformat(),
        "availableSeats": seats_left,
        "maxAttendees": seats,
    }
    messages.announce_seats(session, payload, registered=True)
    with_ticket_json = json_with_ticket(out, ticket_code).encode()
    await emit_json(session, EventType.REGISTRATION_CREATED, endpoints, with_ticket_json)
    return Registered(registration_id, event_id, attendee_id, with_ticket_json, out.encode())


async def _refuse(
    session: AsyncSession, connection: psycopg.AsyncConnection[Any], values: dict[str, Any]
) -> NoReturn:
    """Raise what refused the registration that `_INSERT` did not make.

    It wrote nothing (no row, so no job either). Outside a savepoint (the route's
    own session) the transaction is committed before the refusal goes up, so that
    the request's session does not end it with a ROLLBACK (see `_INSERT`); inside
    one (a signup, an `Idempotency-Key`), the savepoint's rollback is the caller's,
    as with any refusal.
    """
    cursor = await connection.execute(_REFUSAL, values)
    found = await cursor.fetchone()
    assert found is not None
    already, full, attendee_exists = found
    if not session.in_nested_transaction():
        await session.commit()
    if already:
        raise Conflict(ALREADY)
    if full is None:
        raise NotFound.by_id("Event", values["event_id"])
    if not attendee_exists:
        raise NotFound.by_id("Attendee", values["attendee_id"])
    if full:
        raise EventFull
    # Neither full nor taken now: the seat freed or the registration undone since
    # the INSERT's snapshot. The client may simply try again.
    raise Conflict(FULL)


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
