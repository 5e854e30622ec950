"""Self-service bodies: the signup, its outcome, and the attendee's own view."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import field_serializer

from eventms.attendees.schemas import AttendeeName, Email
from eventms.events.schemas import EventBase
from eventms.registrations.schemas import RegistrationBase
from eventms.schemas import CamelModel, InputModel
from eventms.tickets.codes import grouped


class SignupCreate(InputModel):
    name: AttendeeName
    email: Email


class SignupOut(CamelModel):
    """Nothing about the attendee: the email may belong to someone else."""

    status: Literal["registered"]
    registration_id: uuid.UUID
    event_id: uuid.UUID


class SignupWaitlisted(CamelModel):
    """A signup for a full event: a place in its waiting list (1 = next in line)."""

    status: Literal["waitlisted"]
    waitlist_entry_id: uuid.UUID
    event_id: uuid.UUID
    position: int


class OwnAttendee(CamelModel):
    name: str
    email: str


class ManagedRegistration(RegistrationBase):
    """What the holder of a manage link sees: their registration, the event in its
    public view, their own name and email, and their ticket code (grouped)."""

    event: EventBase
    attendee: OwnAttendee
    ticket_code: str

    @field_serializer("ticket_code")
    def _grouped(self, value: str) -> str:
        return grouped(value)
