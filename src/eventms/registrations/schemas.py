"""Registration bodies, and the nested views that join events and attendees.

They live here, in the feature that joins the two, so that neither `events` nor
`attendees` imports the other.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from eventms.attendees.schemas import AttendeeOut
from eventms.events.schemas import EventBase
from eventms.schemas import CamelModel, InputModel


class RegistrationCreate(InputModel):
    eventId: uuid.UUID
    attendeeId: uuid.UUID


class RegistrationBase(CamelModel):
    id: uuid.UUID
    event_id: uuid.UUID
    attendee_id: uuid.UUID
    registered_at: date
    created_at: datetime
    updated_at: datetime


class RegistrationWithAttendee(RegistrationBase):
    attendee: AttendeeOut


class RegistrationWithEvent(RegistrationBase):
    event: EventBase


class RegistrationOut(RegistrationBase):
    event: EventBase
    attendee: AttendeeOut


class EventOut(EventBase):
    """An event with its registrations, each with its attendee (`eventAttendees`)."""

    event_attendees: list[RegistrationWithAttendee] = Field(
        validation_alias="registrations", serialization_alias="eventAttendees"
    )


class AttendeeDetail(AttendeeOut):
    """An attendee with their registrations, each with its event."""

    registrations: list[RegistrationWithEvent]
