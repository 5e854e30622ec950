"""The event types an endpoint may subscribe to (`*`: all of them)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    EVENT_CREATED = "event.created"
    EVENT_UPDATED = "event.updated"
    EVENT_DELETED = "event.deleted"
    REGISTRATION_CREATED = "registration.created"
    REGISTRATION_CANCELED = "registration.canceled"
    WAITLIST_JOINED = "waitlist.joined"
    WAITLIST_PROMOTED = "waitlist.promoted"
    CHECKIN_CREATED = "checkin.created"
    ALL = "*"
