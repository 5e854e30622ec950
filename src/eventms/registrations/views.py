"""The registration as the API shows it, rendered by PostgreSQL (db/json.py)."""

from __future__ import annotations

import orjson

from eventms.attendees.schemas import AttendeeOut, attendee_columns
from eventms.db.json import Expression, JsonObject, Source
from eventms.events.schemas import EventBase, event_columns
from eventms.registrations.schemas import (
    RegistrationOut,
    RegistrationWithTicket,
    registration_columns,
)
from eventms.tickets.codes import grouped

# The ticket code as `tickets.codes.grouped` shows it: XXXXX-XXXXX-XXXXX-XXXXX.
GROUPED_TICKET = (
    "concat_ws('-', substr(r.ticket_code, 1, 5), substr(r.ticket_code, 6, 5),"
    " substr(r.ticket_code, 11, 5), substr(r.ticket_code, 16, 5))"
)
_BOTH_SIDES: dict[str, Expression] = {
    **registration_columns("r"),
    "event": JsonObject(EventBase, event_columns("e")),
    "attendee": JsonObject(AttendeeOut, attendee_columns("a")),
}
# What `registrations:read` reads (the only scope that reads registrations).
REGISTRATION_JSON = JsonObject(
    RegistrationWithTicket, {**_BOTH_SIDES, "ticket_code": GROUPED_TICKET}
)
# What a key that may register, but not read registrations, is answered.
REGISTRATION_OUT_JSON = JsonObject(RegistrationOut, _BOTH_SIDES)


def json_with_ticket(out_json: str, ticket_code: str) -> str:
    """A registration's `REGISTRATION_JSON` made from its `REGISTRATION_OUT_JSON` and
    its stored ticket code, which `RegistrationWithTicket` adds last: a registration
    just made, whose code is known, is rendered by PostgreSQL once, not twice."""
    return f'{out_json[:-1]},"ticketCode":{orjson.dumps(grouped(ticket_code)).decode()}}}'


REGISTRATIONS = Source(
    "FROM registrations r JOIN events e ON e.id = r.event_id"
    " JOIN attendees a ON a.id = r.attendee_id",
    order="r.created_at DESC, r.id",
)
ONE_REGISTRATION = Source(REGISTRATIONS.sql + " WHERE r.id = :id")
