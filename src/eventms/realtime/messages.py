"""What the real-time channel says, and when: the messages services announce.

Services call `announce_*` inside their transaction; each registers an
`after_commit` callback, so nothing is broadcast for a write that rolled back.
The broadcast itself is done by whatever `Broadcaster` the session carries in
`session.info[BROADCASTER]` (the Socket.IO server, set by `create_app`); a session
without one (a script, the seeder) announces nothing. This module knows the
message names and payloads, not Socket.IO.

The original's two messages are plain strings sent to every client; the
structured companions carry `EventPayload` objects.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from eventms.db.effects import after_commit
from eventms.events.models import Event

BROADCASTER = "eventms.realtime.broadcaster"

# The original's names and strings (CONTRACT.md), kept byte for byte.
NEW_EVENT = "new-event"
EVENT_AVAILABILITY = "event-availability"
# Ours: structured companions.
EVENT_CREATED = "event.created"
EVENT_UPDATED = "event.updated"
EVENT_DELETED = "event.deleted"
EVENT_SEATS = "event.availability"
WAITLIST_PROMOTED = "waitlist.promoted"
# To the event's room only: a door dashboard's count. The room is open to anyone
# who connects, so the payload names nobody (no attendee name, no email).
CHECKIN_CREATED = "checkin.created"
CHECKIN_REVERTED = "checkin.reverted"

# The original warns once a registration leaves this many seats or fewer.
FEW_SEATS_LEFT = 2


class EventPayload(TypedDict):
    eventId: str
    name: str
    date: str
    availableSeats: int
    maxAttendees: int


class WaitlistPromotedPayload(TypedDict):
    eventId: str
    registrationIds: list[str]
    waitlistCount: int
    availableSeats: int


class Broadcaster(Protocol):
    async def broadcast(self, message: str, payload: Any, *, room: str | None = None) -> None:
        """Send `message` to every client, or to the clients in `room` only."""


def event_room(event_id: str) -> str:
    """The room of the clients that subscribed to one event."""
    return f"event:{event_id}"


def event_payload(event: Event) -> EventPayload:
    return {
        "eventId": str(event.id),
        "name": event.name,
        "date": event.date.isoformat(),
        "availableSeats": event.available_seats,
        "maxAttendees": event.max_attendees,
    }


def new_event_text(name: str) -> str:
    return f"New event has been organized: {name}"


def few_seats_text(name: str, seats_left: int) -> str:
    return f"Heads up! Seat is going to fill up for: {name}. Only {seats_left} is remaining"


def _after_commit(session: AsyncSession, sends: list[tuple[str, Any, str | None]]) -> None:
    broadcaster: Broadcaster | None = session.info.get(BROADCASTER)
    if broadcaster is None:
        return

    async def send() -> None:
        for message, payload, room in sends:
            await broadcaster.broadcast(message, payload, room=room)

    after_commit(session, send)


def announce_event_created(session: AsyncSession, event: Event) -> None:
    payload = event_payload(event)  # taken now: the object may change before the commit
    _after_commit(
        session,
        [(NEW_EVENT, new_event_text(event.name), None), (EVENT_CREATED, payload, None)],
    )


def announce_event_updated(session: AsyncSession, event: Event, *, seats_changed: bool) -> None:
    payload = event_payload(event)
    sends: list[tuple[str, Any, str | None]] = [(EVENT_UPDATED, payload, None)]
    if seats_changed:
        sends.append((EVENT_SEATS, payload, event_room(payload["eventId"])))
    _after_commit(session, sends)


def announce_event_deleted(session: AsyncSession, event: Event) -> None:
    _after_commit(session, [(EVENT_DELETED, event_payload(event), None)])


def announce_seats_changed(session: AsyncSession, event: Event, *, registered: bool) -> None:
    """A seat was taken (`registered`) or freed at `event` (see `announce_seats`)."""
    announce_seats(session, event_payload(event), registered=registered)


def announce_seats(session: AsyncSession, payload: EventPayload, *, registered: bool) -> None:
    """A seat was taken (`registered`) or freed at the event of `payload`.

    When a registration leaves few seats, everyone hears it: the original's string
    and `event.availability`. Otherwise only the event's subscribers get
    `event.availability`. A subscriber gets it once either way (the room is part of
    everyone).
    """
    sends: list[tuple[str, Any, str | None]]
    if registered and payload["availableSeats"] <= FEW_SEATS_LEFT:
        text = few_seats_text(payload["name"], payload["availableSeats"])
        sends = [(EVENT_AVAILABILITY, text, None), (EVENT_SEATS, payload, None)]
    else:
        sends = [(EVENT_SEATS, payload, event_room(payload["eventId"]))]
    _after_commit(session, sends)


def announce_waitlist_promoted(
    session: AsyncSession, event: Event, registration_ids: list[uuid.UUID]
) -> None:
    """Seats at `event` went to the head of its waiting list (`registration_ids`, in
    order): its subscribers hear it. Registration ids only: the room is public."""
    payload: WaitlistPromotedPayload = {
        "eventId": str(event.id),
        "registrationIds": [str(rid) for rid in registration_ids],
        "waitlistCount": event.waitlist_count,
        "availableSeats": event.available_seats,
    }
    _after_commit(session, [(WAITLIST_PROMOTED, payload, event_room(payload["eventId"]))])


class CheckinPayload(TypedDict):
    eventId: str
    registrationId: str
    checkedInAt: str
    checkedInCount: int


def announce_checkin(
    session: AsyncSession,
    message: str,
    *,
    event_id: uuid.UUID,
    registration_id: uuid.UUID,
    checked_in_at: str,
    checked_in_count: int,
) -> None:
    """A ticket of the event was checked in (CHECKIN_CREATED) or out (CHECKIN_REVERTED)."""
    payload: CheckinPayload = {
        "eventId": str(event_id),
        "registrationId": str(registration_id),
        "checkedInAt": checked_in_at,
        "checkedInCount": checked_in_count,
    }
    _after_commit(session, [(message, payload, event_room(payload["eventId"]))])
