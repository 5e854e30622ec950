"""Registration bodies: the request, the registration alone, and with both sides."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from eventms.attendees.schemas import AttendeeOut
from eventms.events.schemas import EventBase
from eventms.schemas import CamelModel, InputModel


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
