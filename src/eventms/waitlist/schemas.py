"""Waiting-list bodies: the request, an entry, and an entry with its attendee."""

from __future__ import annotations

import uuid
from datetime import datetime

from eventms.attendees.schemas import AttendeeOut
from eventms.schemas import CamelModel, InputModel


class WaitlistJoin(InputModel):
    attendee_id: uuid.UUID


class WaitlistEntryOut(CamelModel):
    id: uuid.UUID
    event_id: uuid.UUID
    attendee_id: uuid.UUID
    position: int
    created_at: datetime


class WaitlistEntryWithAttendee(WaitlistEntryOut):
    attendee: AttendeeOut
