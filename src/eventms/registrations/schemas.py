"""Registration bodies: the request, the registration alone, and with both sides."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import field_serializer

from eventms.attendees.schemas import AttendeeOut
from eventms.events.schemas import EventBase
from eventms.schemas import CamelModel, InputModel
from eventms.tickets.codes import grouped


class RegistrationCreate(InputModel):
    event_id: uuid.UUID
    attendee_id: uuid.UUID


class RegistrationBase(CamelModel):
    id: uuid.UUID
    event_id: uuid.UUID
    attendee_id: uuid.UUID
    registered_at: date
    created_at: datetime
    updated_at: datetime


class RegistrationOut(RegistrationBase):
    event: EventBase
    attendee: AttendeeOut


class RegistrationWithTicket(RegistrationOut):
    """A registration as `registrations:read` sees it: with its ticket code (grouped,
    `XXXXX-XXXXX-XXXXX-XXXXX`). The views of events and attendees never show it."""

    ticket_code: str

    @field_serializer("ticket_code")
    def _grouped(self, value: str) -> str:
        return grouped(value)


def registration_columns(r: str) -> dict[str, str]:
    """SQL for each field of `RegistrationBase`, over a `registrations` row aliased `r`."""
    return {
        "id": f"{r}.id",
        "event_id": f"{r}.event_id",
        "attendee_id": f"{r}.attendee_id",
        "registered_at": f"{r}.registered_at",
        "created_at": f"{r}.created_at",
        "updated_at": f"{r}.updated_at",
    }
