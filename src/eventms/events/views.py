"""The event as the API shows it whole: with its registrations, each with its
attendee (`eventAttendees`). Apart from `schemas` because it joins three features,
which import each other's plain shapes only."""

from __future__ import annotations

from pydantic import Field

from eventms.attendees.schemas import AttendeeOut
from eventms.events.schemas import EventBase
from eventms.registrations.schemas import RegistrationBase


class EventAttendee(RegistrationBase):
    """One of `eventAttendees`: a registration with its attendee."""

    attendee: AttendeeOut


class EventOut(EventBase):
    """An event with its registrations, each with its attendee (`eventAttendees`)."""

    event_attendees: list[EventAttendee] = Field(
        validation_alias="registrations", serialization_alias="eventAttendees"
    )
