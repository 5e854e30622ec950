"""The attendee as the API shows it by id: with their registrations, each with its
event. Apart from `schemas` because it joins three features, which import each
other's plain shapes only."""

from __future__ import annotations

from eventms.attendees.schemas import AttendeeOut, attendee_columns
from eventms.db.json import JsonArray, JsonObject, Matches, Source
from eventms.events.schemas import EventBase, event_columns
from eventms.registrations.schemas import RegistrationBase, registration_columns


class AttendeeRegistration(RegistrationBase):
    """One of an attendee's `registrations`: with its event."""

    event: EventBase


class AttendeeDetail(AttendeeOut):
    """An attendee with their registrations, each with its event."""

    registrations: list[AttendeeRegistration]


# The same views rendered by PostgreSQL (db/json.py), for reads.
ATTENDEE_JSON = JsonObject(AttendeeOut, attendee_columns("a"))
ATTENDEE_DETAIL_JSON = JsonObject(
    AttendeeDetail,
    {
        **attendee_columns("a"),
        "registrations": JsonArray(
            JsonObject(
                AttendeeRegistration,
                {**registration_columns("r"), "event": JsonObject(EventBase, event_columns("e"))},
            ),
            "FROM registrations r JOIN events e ON e.id = r.event_id WHERE r.attendee_id = a.id",
            "r.created_at, r.id",
        ),
    },
)
ONE_ATTENDEE = Source("FROM attendees a WHERE a.id = :id")
# The events an attendee's view shows: their cache tags.
SHOWN_EVENTS = "ARRAY(SELECT event_id FROM registrations WHERE attendee_id = a.id) AS event_ids"


def search_matches(*, name: bool, email: bool) -> Matches:
    """Attendees whose name and/or email contain the `name` / `email` patterns
    (ILIKE, `\\` escapes), by name."""
    conditions = []
    if name:
        conditions.append("a.name ILIKE %(name)s ESCAPE '\\'")
    if email:
        conditions.append("a.email ILIKE %(email)s ESCAPE '\\'")
    return Matches("attendees", "a", " AND ".join(conditions), order=("name", "id"))
