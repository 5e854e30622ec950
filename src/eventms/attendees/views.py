"""The attendee as the API shows it by id: with their registrations, each with its
event. Apart from `schemas` because it joins three features, which import each
other's plain shapes only."""

from __future__ import annotations

from eventms.attendees.schemas import AttendeeOut
from eventms.events.schemas import EventBase
from eventms.registrations.schemas import RegistrationBase


class AttendeeRegistration(RegistrationBase):
    """One of an attendee's `registrations`: with its event."""

    event: EventBase


class AttendeeDetail(AttendeeOut):
    """An attendee with their registrations, each with its event."""

    registrations: list[AttendeeRegistration]
