"""The event as the API shows it whole: with its registrations, each with its
attendee (`eventAttendees`). Apart from `schemas` because it joins three features,
which import each other's plain shapes only."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from eventms.attendees.schemas import AttendeeOut, attendee_columns
from eventms.db.json import JsonArray, JsonObject, Source
from eventms.events.schemas import EventBase, event_columns
from eventms.registrations.schemas import RegistrationBase, registration_columns


class EventAttendee(RegistrationBase):
    """One of `eventAttendees`: a registration with its attendee."""

    attendee: AttendeeOut


class EventOut(EventBase):
    """An event with its registrations, each with its attendee (`eventAttendees`)."""

    event_attendees: list[EventAttendee] = Field(
        validation_alias="registrations", serialization_alias="eventAttendees"
    )


# The same views rendered by PostgreSQL (db/json.py), for reads.
EVENT_PUBLIC_JSON = JsonObject(EventBase, event_columns("e"))
EVENT_JSON = JsonObject(
    EventOut,
    {
        **event_columns("e"),
        "event_attendees": JsonArray(
            JsonObject(
                EventAttendee,
                {
                    **registration_columns("r"),
                    "attendee": JsonObject(AttendeeOut, attendee_columns("a")),
                },
            ),
            "FROM registrations r JOIN attendees a ON a.id = r.attendee_id WHERE r.event_id = e.id",
            "r.created_at, r.id",
        ),
    },
)
ONE_EVENT = Source("FROM events e WHERE e.id = :id")


def events_source(date_from: date | None, date_to: date | None) -> Source:
    """The events in [date_from, date_to] (either bound optional), by date."""
    conditions = []
    if date_from is not None:
        conditions.append("e.date >= :date_from")
    if date_to is not None:
        conditions.append("e.date <= :date_to")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return Source("FROM events e" + where, order="e.date, e.created_at, e.id")
